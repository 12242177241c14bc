"""The TRL callbacks of the phases: the stagnation stop rule, the NaN guard and the compute budget.

Every decision that stops a phase is taken on rank 0 and broadcast (or computed from gathered data), so every rank
stops at the same step.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from transformers import TrainerCallback

from dppo_embodied.errors import TrainingError
from training.algorithm.rewards import RewardRecord, RewardRecorder
from training.algorithm.stagnation import SaturationTracker, WindowReport
from training.phases.common import ComputeClock
from training.runs.distributed import broadcast, gather_list

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
