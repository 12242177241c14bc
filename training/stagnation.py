"""The RL stop rule: per-task saturation TS_i, averaged over tasks; stop when mean_i TS_i >= 0.7 ([TR]).

The per-task score is not published; ours ([D], dppo-paper.md section 5) is computed from the rollouts GRPO
already makes — no extra generation. Every ``window`` optimizer steps, each buffer sample seen in the window gets a
new success rate SR_t (successes / completions of that sample in the window, from :class:`RewardRecorder`). The
initial SR comes from the difficulty estimation. A sample is

* *saturated* when SR_t = 1,
* *stuck* when SR = 0 in the last two windows,
* *plateaued* when |SR_t − SR_{t−1}| < ε,

and *moving* otherwise (samples not seen in a window keep their last status; before their first visit they are
moving). TS_i(t) = fraction of task-i buffer samples that are saturated, stuck or plateaued. The phase stops when
``mean_i TS_i(t) >= threshold`` after at least ``min_windows`` windows, or when the step budget ends.

Multi-process runs: each rank only scores its own completions, so the window's records are gathered from all ranks
before the update, and the decision is broadcast from rank 0: every rank stops at the same step.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from transformers import TrainerCallback

from dppo_embodied.errors import TrainingError
from training.distributed import broadcast, gather_list
from training.metaloop_config import StagnationSettings
from training.rewards import RewardRecord, RewardRecorder

logger = logging.getLogger(__name__)

SETTLED = ("saturated", "stuck", "plateau")


@dataclass
class WindowReport:
    """The stop-rule evaluation at one window: step, per-task TS_i, their mean, and the decision."""

    step: int
    window: int
    ts: float
    ts_per_task: dict[str, float]
    stop: bool
    seen: int
    statuses: dict[str, int] = field(default_factory=dict)


class SaturationTracker:
    """Per-sample SR history and the TS score (pure logic; no torch).

    Args:
        initial_sr: ``sample_id -> SR`` from the difficulty estimation (window 0).
        tasks: ``sample_id -> task``.
        cfg: threshold, ε, min windows.
    """

    def __init__(self, initial_sr: dict[str, float], tasks: dict[str, str], cfg: StagnationSettings) -> None:
        self.cfg = cfg
        self.tasks = dict(tasks)
        self.history: dict[str, list[float]] = {i: [float(sr)] for i, sr in initial_sr.items()}
        self.status: dict[str, str] = dict.fromkeys(initial_sr, "moving")
        self.windows = 0

    def _classify(self, hist: list[float]) -> str:
        cur = hist[-1]
        if cur >= 1.0:
            return "saturated"
        if len(hist) >= 2 and cur <= 0.0 and hist[-2] <= 0.0:
            return "stuck"
        if len(hist) >= 2 and abs(cur - hist[-2]) < self.cfg.epsilon:
            return "plateau"
        return "moving"

    def update(self, records: Iterable[RewardRecord], step: int) -> WindowReport:
        """Fold one window of records in and evaluate the stop rule."""
        succ: dict[str, list[bool]] = defaultdict(list)
        for r in records:
            if r.sample_id in self.history:
                succ[r.sample_id].append(r.success)
        for sid, oks in succ.items():
            self.history[sid].append(sum(oks) / len(oks))
            self.status[sid] = self._classify(self.history[sid])
        self.windows += 1
        per_task: dict[str, list[bool]] = defaultdict(list)
        for sid, st in self.status.items():
            per_task[self.tasks.get(sid, "")].append(st in SETTLED)
        ts_i = {t: sum(v) / len(v) for t, v in sorted(per_task.items())}
        ts = sum(ts_i.values()) / len(ts_i) if ts_i else 1.0
        stop = self.windows >= self.cfg.min_windows and ts >= self.cfg.threshold - 1e-12
        counts: dict[str, int] = defaultdict(int)
        for st in self.status.values():
            counts[st] += 1
        return WindowReport(step=step, window=self.windows, ts=ts, ts_per_task=ts_i, stop=stop, seen=len(succ),
                            statuses=dict(counts))

    def add(self, sample_id: str, sr: float, task: str) -> None:
        """Start tracking a sample that joined the buffer mid-phase (dynamic sampling refilled it)."""
        if sample_id not in self.history:
            self.history[sample_id] = [float(sr)]
            self.status[sample_id] = "moving"
            self.tasks[sample_id] = task

    def mark(self, sample_id: str, status: str) -> None:
        """Set a sample's status from outside (dynamic sampling dropped it: ``saturated`` / ``stuck``...).

        Any status other than ``saturated`` or ``stuck`` counts as ``plateau`` (settled: no learning signal left).
        """
        if sample_id in self.status:
            self.status[sample_id] = status if status in ("saturated", "stuck") else "plateau"

    def current_sr(self) -> dict[str, float]:
        """Latest SR per sample."""
        return {i: h[-1] for i, h in self.history.items()}


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
        from training.sft_phase import ComputeClock

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
