"""The TRL callbacks of the phases: the stagnation stop rule, the NaN guard, the compute budget and progress lines.

Every decision that stops a phase is taken on rank 0 and broadcast (or computed from gathered data), so every rank
stops at the same step.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

from transformers import TrainerCallback

from dppo_embodied.errors import TrainingError
from training.algorithm.rewards import RewardRecord, RewardRecorder
from training.algorithm.stagnation import SaturationTracker, WindowReport
from training.phases.common import ComputeClock
from training.runs.distributed import broadcast, gather_list, is_main

logger = logging.getLogger(__name__)


class StagnationCallback(TrainerCallback):
    """Evaluates :class:`SaturationTracker` every ``window`` steps and stops the phase on a rank-consistent decision.

    Args:
        tracker: the tracker, initialised with the buffer's SR.
        recorder: this rank's reward recorder.
    """

    def __init__(self, tracker: SaturationTracker, recorder: RewardRecorder) -> None:
        self.tracker, self.recorder = tracker, recorder
        self.reports: list[WindowReport] = []
        self.stopped_at: int | None = None
        self._window_start = 0

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        """At the end of each window, gather the window's records, update TS, and maybe stop."""
        step = int(state.global_step)
        if step % self.tracker.cfg.window != 0:
            return control
        # Rewards recorded during this window: the completions generated for steps (window_start, step].
        local = [r.__dict__ for r in self.recorder.since(self._window_start)
                 if r.step < step]
        records = [RewardRecord(**d) for d in gather_list(local)]
        self._window_start = step
        report = self.tracker.update(records, step)
        stop = bool(broadcast(report.stop))
        report.stop = stop
        self.reports.append(report)
        logger.info("RL step %d: TS = %.3f (per task %s)%s", step, report.ts,
                    {k: round(v, 2) for k, v in report.ts_per_task.items()}, " -> stop" if stop else "")
        if stop:
            self.stopped_at = step
            control.should_training_stop = True
        return control


class NaNGuard(TrainerCallback):
    """Stops a phase with a :class:`TrainingError` as soon as a logged loss is NaN or infinite.

    The exception propagates out of ``trainer.train()`` before the phase's checkpoint is committed, so the run
    state still points at the last good checkpoint and ``--resume`` restarts the phase from there.
    """

    def __init__(self, phase: str) -> None:
        self.phase = phase

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """Check ``loss`` (and ``grad_norm``) in every log."""
        for key in ("loss", "grad_norm"):
            v = (logs or {}).get(key)
            if isinstance(v, (int, float)) and not math.isfinite(v):
                raise TrainingError(
                    f"{self.phase} phase: {key} is {v} at step {state.global_step}; the phase stopped and nothing of "
                    "it was saved. Lower the learning rate (grpo.learning_rate / sft.learning_rate) and rerun with "
                    "--resume: the run restarts this phase from the last completed step")
        return control


class BudgetCallback(TrainerCallback):
    """Stops a phase when the run's compute budget is spent (rank 0 decides; every rank stops at the same step).

    Args:
        budget_s: compute seconds this phase may still use (``inf`` for no budget).
    """

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s
        self.clock = ComputeClock()
        self.exhausted = False

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        """Start the clock."""
        self.clock.__enter__()
        return control

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        """Stop once the phase used its budget."""
        if math.isinf(self.budget_s):
            return control
        spent = self.clock._now() - self.clock._t0
        if bool(broadcast(spent >= self.budget_s)):
            self.exhausted = True
            control.should_training_stop = True
        return control


def _duration(seconds: float) -> str:
    s = max(0, round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


class PhaseProgress(TrainerCallback):
    """One log line every ``max_steps / lines`` steps (and at least every ``every_s`` seconds) with the step, the
    loss, the reward and saturation score (RL), the learning rate, the speed and the ETA, e.g.::

        RL: step 12/30 (40%) | loss 0.0123 | reward 0.412 | TS 0.35 | lr 5.0e-05 | 2.10 s/step | 25s, ETA 38s

    Args:
        phase: the phase's name in the line (``pre-training``, ``RL``, ``SFT``).
        ts: returns the latest saturation score (RL), or ``None``.
        lines: about how many lines per phase.
        every_s: the longest silence, seconds.
    """

    def __init__(self, phase: str, ts: Callable[[], float | None] | None = None, lines: int = 10,
                 every_s: float = 30.0) -> None:
        self.phase, self.ts, self.lines, self.every_s = phase, ts, lines, every_s
        self.last: dict[str, float] = {}
        self._t0 = self._t_line = 0.0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        """Start the clock."""
        self._t0 = self._t_line = time.monotonic()
        return control

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """Keep the latest loss, reward and learning rate."""
        for key in ("loss", "reward", "learning_rate"):
            v = (logs or {}).get(key)
            if isinstance(v, (int, float)):
                self.last[key] = float(v)
        return control

    def line(self, step: int, total: int) -> str:
        """The progress line at ``step`` of ``total``."""
        elapsed = time.monotonic() - self._t0
        rate = elapsed / step if step else 0.0
        parts = [f"{self.phase}: step {step}/{total} ({100 * step // max(total, 1)}%)"]
        if "loss" in self.last:
            parts.append(f"loss {self.last['loss']:.4g}")
        if "reward" in self.last:
            parts.append(f"reward {self.last['reward']:.3f}")
        ts = self.ts() if self.ts is not None else None
        if ts is not None:
            parts.append(f"TS {ts:.2f}")
        if "learning_rate" in self.last:
            parts.append(f"lr {self.last['learning_rate']:.1e}")
        parts.append(f"{rate:.2f} s/step | {_duration(elapsed)}, ETA {_duration(rate * max(total - step, 0))}")
        return " | ".join(parts)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        """Log a line on the first step, every ``max_steps / lines`` steps, after ``every_s`` of silence and on the
        last step."""
        step, total = int(state.global_step), int(state.max_steps or 0)
        now = time.monotonic()
        every = max(1, total // max(self.lines, 1))
        if step == 1 or step % every == 0 or step >= total or now - self._t_line >= self.every_s:
            self._t_line = now
            if is_main():
                logger.info("%s", self.line(step, total))
        return control
