"""The SFT phase: D_weak ∪ D_assoc ∪ D_gen mixed by ratio, trained with TRL's SFTTrainer (prompt-completion rows).

* D_weak: verified teacher targets for the diagnosed failures (:mod:`training.algorithm.teacher`).
* D_assoc: pool samples sharing the weak capabilities, plus (``sft.synthesize_assoc``) fresh samples of those
  capabilities synthesised by the simulated world's generator with new seeds, oracle answers.
* D_gen: general replay against forgetting.

Each source is drawn with replacement up to its share of ``sft.size`` (an empty source gives its share to the
others). Rows are ``prompt`` (conversational, image placeholders) + ``completion`` (the target) + ``images``: the
sample's :class:`~dppo_embodied.conversation.Conversation` from the one renderer
(:func:`dppo_embodied.rendering.render_sample`) and a target from the one builder
(:func:`dppo_embodied.answer_text.target_text`); TRL trains on the completion only. Loss is guarded against NaN
(:class:`training.phases.callbacks.NaNGuard`).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dppo_embodied.errors import MediaError
from dppo_embodied.media import MediaLoader
from dppo_embodied.rendering import render_sample
from dppo_embodied.types import EmbodiedSample
from training.algorithm.sample_io import oracle_target, prompt_row
from training.phases.common import ComputeClock, PhaseResult, common_args, make_args, quiet

logger = logging.getLogger(__name__)


def sft_rows(items: Sequence[tuple[EmbodiedSample | dict[str, Any], str]], loader: MediaLoader,
             skipped: list[dict[str, str]] | None = None) -> list[dict[str, Any]]:
    """Prompt-completion rows from (sample or ready ``{"prompt", "images"}`` row, target) pairs.

    Samples whose media fail to load are skipped with the reason logged.
    """
    rows = []
    for sample, target in items:
        completion = [{"role": "assistant", "content": [{"type": "text", "text": target}]}]
        if isinstance(sample, dict):  # a ready conversation (closed-loop demonstration step)
            rows.append({"prompt": sample["prompt"], "completion": completion, "images": sample["images"]})
            continue
        try:
            conv = render_sample(sample, loader)
        except MediaError as e:
            logger.warning("SFT: skipping sample %s: %s", sample.id, e)
            if skipped is not None:
                skipped.append({"id": sample.id, "reason": str(e)})
            continue
        rows.append({**prompt_row(conv), "completion": completion})
    return rows


def mix(weak: Sequence[tuple[Any, str]], assoc: Sequence[Any], general: Sequence[EmbodiedSample],
        ratios: Sequence[float], size: int, seed: int, with_reasoning: bool = False,
        own: Sequence[tuple[Any, str]] = (), own_weight: float = 0.0) -> list[tuple[Any, str]]:
    """D_weak ∪ D_assoc ∪ D_gen (∪ D_self) by ``ratios`` (with replacement; an empty source's share goes to the
    others).

    Args:
        weak: (sample or ready row, verified target) pairs from the teacher / closed-loop oracle.
        assoc: associated samples (oracle targets), or verified (sample, target) pairs.
        general: general replay samples (oracle targets).
        ratios: weights [weak, assoc, gen].
        size: rows in the mix.
        seed: sampling seed.
        with_reasoning: oracle targets carry the sample's reasoning in ``<think>``.
        own: D_self, (sample, the policy's own rollout that passed the reward) pairs from the diagnosis.
        own_weight: D_self's weight next to ``ratios`` (0 = D_self left out).
    """
    rng = random.Random(seed)

    def oracle(s: EmbodiedSample | tuple[Any, str]) -> tuple[Any, str]:
        if isinstance(s, tuple):  # an already verified (sample, target) pair
            return s
        return s, oracle_target(s, with_reasoning)

    sources = [list(weak), [oracle(s) for s in assoc], [oracle(s) for s in general], list(own)]
    weights = [w if src else 0.0 for w, src in zip([*ratios, own_weight], sources, strict=True)]
    if sum(weights) == 0:
        return []
    counts = [round(size * w / sum(weights)) for w in weights]
    out: list[tuple[Any, str]] = []
    for src, n in zip(sources, counts, strict=False):
        if not src or n == 0:
            continue
        full, rest = divmod(n, len(src))
        out += src * full + rng.sample(src, rest)
    rng.shuffle(out)
    return out


def run_sft(model: Any, processor: Any, items: Sequence[tuple[Any, str]], *, out_dir: str | Path,
            max_steps: int, learning_rate: float, batch_size: int, warmup_steps: int = 0, seed: int = 0,
            report_to: Sequence[str] = (), trainer_overrides: dict[str, Any] | None = None,
            loader: MediaLoader | None = None, peft_config: Any = None, phase: str = "SFT",
            budget_s: float = float("inf"), progress: bool = False,
            lr_scheduler: str = "constant") -> PhaseResult:
    """Train ``model`` in place with TRL's SFTTrainer on ``items``.

    Raises:
        TrainingError: on a NaN/inf loss (nothing of the phase is saved; the run stays resumable).
    """
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from training.phases.callbacks import BudgetCallback, NaNGuard, PhaseProgress

    loader = loader or MediaLoader()
    skipped: list[dict[str, str]] = []
    rows = sft_rows(items, loader, skipped)
    if not rows or max_steps == 0:
        logger.warning("%s: nothing to train (%d rows, %d steps)", phase, len(rows), max_steps)
        return PhaseResult(steps=0, compute_s=0.0, skipped=skipped, rows=len(rows))
    base = common_args(out_dir, report_to, seed, max_steps, progress)
    schedule = lr_scheduler if lr_scheduler != "constant" else (
        "constant_with_warmup" if warmup_steps else "constant")
    base.update(per_device_train_batch_size=batch_size, learning_rate=learning_rate, max_length=None,
                lr_scheduler_type=schedule, warmup_steps=warmup_steps)
    args = make_args(SFTConfig, base, dict(trainer_overrides or {}), "sft.trainer")
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=processor,
                         callbacks=[NaNGuard(phase), BudgetCallback(budget_s), PhaseProgress(phase)],
                         peft_config=peft_config)
    quiet(trainer)
    model.train()
    with ComputeClock() as clock:
        trainer.train()
    model.eval()
    _merge_lora(trainer, peft_config)
    return PhaseResult(steps=int(trainer.state.global_step), compute_s=clock.seconds,
                       log_history=list(trainer.state.log_history), skipped=skipped, rows=len(rows))


def _merge_lora(trainer: Any, peft_config: Any) -> None:
    """LoRA phases train adapters; they are merged into the base weights when the phase ends."""
    if peft_config is None:
        return
    merged = trainer.model.merge_and_unload()
    trainer.model = merged
