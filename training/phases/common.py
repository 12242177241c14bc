"""What every TRL phase shares: the phase result, the compute clock and the TrainingArguments helpers."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dppo_embodied.errors import ConfigError


@dataclass
class PhaseResult:
    """What a training phase reports back to the metaloop.

    Attributes:
        steps: optimizer steps taken.
        compute_s: training compute (process CPU seconds; wall seconds on GPU).
        log_history: TRL's log history (losses, rewards, ...).
        stopped_early: RL only: the stagnation rule fired before the step budget.
        reports: RL only: the stop-rule evaluations.
        skipped: samples skipped for bad media, with reasons.
        rows: training rows used.
        dynamic_sampling: RL only: what dynamic sampling did
            (:class:`training.phases.dynamic_sampling.SamplerStats`).
    """

    steps: int
    compute_s: float
    log_history: list[dict[str, Any]] = field(default_factory=list)
    stopped_early: bool = False
    reports: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    rows: int = 0
    dynamic_sampling: dict[str, Any] | None = None


class ComputeClock:
    """Measures a phase's compute: process CPU seconds on CPU, wall seconds when CUDA is in use."""

    def __init__(self) -> None:
        import torch

        self.cuda = torch.cuda.is_available()
        self._t0 = 0.0

    def _now(self) -> float:
        return time.perf_counter() if self.cuda else time.process_time()

    def __enter__(self) -> ComputeClock:
        self._t0 = self._now()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = self._now() - self._t0


def common_args(output_dir: str | Path, report_to: Sequence[str], seed: int, max_steps: int,
                progress: bool = False) -> dict[str, Any]:
    """TrainingArguments shared by both phases (CPU-friendly defaults; recipes override through ``trainer:``).

    TensorBoard events (``report_to: [tensorboard]``) go to ``<output_dir>/runs/``. transformers' own bar stays off
    (with ``logging_steps: 1`` it would print every log dict): progress is
    :class:`~training.phases.callbacks.PhaseProgress`'s lines; ``progress`` is kept for the callers' signature.
    """
    import torch

    reporters = [r for r in report_to if r != "none"]
    return {
        "output_dir": str(output_dir),
        "max_steps": max_steps,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": reporters,
        "seed": seed,
        "activation_checkpointing": False,
        "bf16": False,
        "use_cpu": not torch.cuda.is_available(),
        "dataloader_num_workers": 0,
        "disable_tqdm": True,
    }


def quiet(trainer: Any) -> Any:
    """Drop transformers' PrinterCallback (it prints every log dict to stdout; logs still reach TensorBoard)."""
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)
    return trainer


def make_args(cls: type, base: dict[str, Any], overrides: dict[str, Any], key: str) -> Any:
    """Build a TRL config from ``base`` + recipe ``overrides`` (checked by name: errors name ``key.<field>``)."""
    check_trainer_overrides(cls, overrides, key)
    kwargs = {**base, **overrides}
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{key}: invalid trainer settings ({e})") from e



def check_trainer_overrides(cls: type, overrides: dict[str, Any], key: str) -> None:
    """Check that every key of a ``trainer:`` mapping is a field of TRL's ``cls`` (GRPOConfig or SFTConfig).

    Raises:
        ConfigError: naming ``<key>.<field>`` and a few valid fields.
    """
    valid = {f.name for f in dataclasses.fields(cls)}
    for name in overrides:
        if name not in valid:
            close = sorted(v for v in valid if v.split("_")[0] == name.split("_")[0])[:8]
            hint = f"; similar: {', '.join(close)}" if close else ""
            raise ConfigError(f"{key}.{name}: not a field of trl.{cls.__name__}{hint}")
