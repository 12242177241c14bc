"""The RL stop rule: per-task saturation TS_i, averaged over tasks; stop when mean_i TS_i >= 0.7 ([TR]).

The per-task score is not published; ours ([D], dppo-paper.md section 5) is computed from the rollouts GRPO
already makes — no extra generation. Every ``window`` optimizer steps, each buffer sample seen in the window gets a
new success rate SR_t (successes / completions of that sample in the window, from :class:`RewardRecorder`). The
initial SR comes from the difficulty estimation. A sample is

* *saturated* when SR_t = 1,
* *stuck* when SR = 0 in the last two windows,
* *plateaued* when |SR_t − SR_{t−1}| < max(ε, z·se), se = sqrt(p̄(1 − p̄)(1/n_{t−1} + 1/n_t)) the binomial standard
  error of the difference (p̄ pooled over both windows' n rollouts; z = ``plateau_z``, 0 = ε alone),

and *moving* otherwise (samples not seen in a window keep their last status). TS_i(t) = fraction of task-i buffer
samples that are saturated, stuck or plateaued, over the samples the phase has rolled out (``count_unvisited``:
over all, the unvisited counting as moving). The phase stops when ``mean_i TS_i(t) >= threshold`` after at least
``min_windows`` windows, or when the step budget ends.

Why the band and the visited set: with T = 4 estimation rollouts and G = 8 completions per visit, SR moves in steps
of 1/8-1/4 from noise alone, so |ΔSR| < 0.1 almost only holds for equal estimates; and a phase whose step budget
visits each buffer sample about once can never see 70 % of its buffer settle. Replayed on the recorded reward
streams of a demo run, the absolute rule gave TS 0.15 / 0.22 / 0.30 at the end of the three RL phases (held-out
success moved +0.4, 0.0, −2.0 points); this one fires in loops 2 and 3 and lets loop 1 run (TS 0.55), and on the
ablation regime (where RL raises sampled success) it stays below 0.7 like the absolute rule (docs/training.md).

This module is the tracker (pure logic, no torch); :class:`training.phases.callbacks.StagnationCallback` runs it
inside the GRPO trainer. Multi-process runs: each rank only scores its own completions, so the callback gathers the
window's records from all ranks before the update and broadcasts rank 0's decision: every rank stops at the same
step.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from training.algorithm.rewards import RewardRecord
from training.algorithm.stagnation_config import StagnationSettings

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

    def __init__(self, initial_sr: dict[str, float], tasks: dict[str, str], cfg: StagnationSettings,
                 initial_rollouts: int = 4) -> None:
        self.cfg = cfg
        self.tasks = dict(tasks)
        self.initial_rollouts = max(1, int(initial_rollouts))
        self.history: dict[str, list[float]] = {i: [float(sr)] for i, sr in initial_sr.items()}
        self.counts: dict[str, list[int]] = {i: [self.initial_rollouts] for i in initial_sr}
        self.status: dict[str, str] = dict.fromkeys(initial_sr, "moving")
        self.visited: set[str] = set()
        self.windows = 0

    def band(self, p1: float, n1: int, p2: float, n2: int) -> float:
        """The plateau band: ``max(ε, z · se)`` of an SR difference between ``n1`` and ``n2`` rollouts."""
        p = (p1 * n1 + p2 * n2) / (n1 + n2)
        return max(self.cfg.epsilon, self.cfg.plateau_z * math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2)))

    def _classify(self, hist: list[float], counts: list[int]) -> str:
        cur = hist[-1]
        if cur >= 1.0:
            return "saturated"
        if len(hist) >= 2 and cur <= 0.0 and hist[-2] <= 0.0:
            return "stuck"
        if len(hist) >= 2 and abs(cur - hist[-2]) < self.band(hist[-2], counts[-2], cur, counts[-1]):
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
            self.counts[sid].append(len(oks))
            self.status[sid] = self._classify(self.history[sid], self.counts[sid])
            self.visited.add(sid)
        self.windows += 1
        per_task: dict[str, list[bool]] = defaultdict(list)
        for sid, st in self.status.items():
            if not (self.cfg.count_unvisited or sid in self.visited):
                continue
            per_task[self.tasks.get(sid, "")].append(st in SETTLED)
        ts_i = {t: sum(v) / len(v) for t, v in sorted(per_task.items())}
        ts = sum(ts_i.values()) / len(ts_i) if ts_i else (0.0 if self.status else 1.0)  # nothing to track: stop
        stop = self.windows >= self.cfg.min_windows and ts >= self.cfg.threshold - 1e-12
        counts: dict[str, int] = defaultdict(int)
        for st in self.status.values():
            counts[st] += 1
        return WindowReport(step=step, window=self.windows, ts=ts, ts_per_task=ts_i, stop=stop, seen=len(succ),
                            statuses=dict(counts))

    def current_sr(self) -> dict[str, float]:
        """Latest SR per sample."""
        return {i: h[-1] for i, h in self.history.items()}

    def add(self, sample_id: str, sr: float, task: str) -> None:
        """Start tracking a sample that joined the buffer mid-phase (dynamic sampling refilled it)."""
        if sample_id not in self.history:
            self.history[sample_id] = [float(sr)]
            self.counts[sample_id] = [self.initial_rollouts]
            self.status[sample_id] = "moving"
            self.tasks[sample_id] = task

    def mark(self, sample_id: str, status: str) -> None:
        """Set a sample's status from outside (dynamic sampling dropped it: ``saturated`` / ``stuck``...).

        Any status other than ``saturated`` or ``stuck`` counts as ``plateau`` (settled: no learning signal left).
        """
        if sample_id in self.status:
            self.status[sample_id] = status if status in ("saturated", "stuck") else "plateau"
            self.visited.add(sample_id)
