"""The stop rule: per-task saturation score, thresholds, windows; the callback stops a trainer; NaN guard."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from dppo_embodied.errors import TrainingError
from training.algorithm.rewards import RewardRecord, RewardRecorder
from training.algorithm.stagnation import SaturationTracker
from training.algorithm.stagnation_config import StagnationSettings
from training.phases.callbacks import BudgetCallback, NaNGuard, StagnationCallback


def _recs(step: int, outcomes: dict[str, list[bool]]) -> list[RewardRecord]:
    return [RewardRecord(step, sid, float(ok), ok) for sid, oks in outcomes.items() for ok in oks]


def test_statuses_and_per_task_score() -> None:
    cfg = StagnationSettings(threshold=0.7, window=4, epsilon=0.1, min_windows=1, plateau_z=0)
    tr = SaturationTracker({"a": 0.5, "b": 0.5, "c": 0.0, "d": 0.5}, {"a": "t1", "b": "t1", "c": "t2", "d": "t2"}, cfg)
    rep = tr.update(_recs(0, {"a": [True] * 4, "b": [True, False, True, False], "c": [False] * 4,
                              "d": [True, True, True, False]}), step=4)
    # a: SR 1 -> saturated; b: 0.5 -> 0.5 plateau; c: 0 twice -> stuck; d: 0.5 -> 0.75 moving
    assert tr.status == {"a": "saturated", "b": "plateau", "c": "stuck", "d": "moving"}
    assert rep.ts_per_task == {"t1": 1.0, "t2": 0.5}
    assert rep.ts == pytest.approx(0.75) and rep.stop
    assert rep.seen == 4


def test_min_windows_threshold_and_unseen_samples() -> None:
    cfg = StagnationSettings(threshold=0.7, window=2, epsilon=0.1, min_windows=2, count_unvisited=True)
    tr = SaturationTracker({"a": 0.5, "b": 0.5}, {"a": "t", "b": "t"}, cfg)
    r1 = tr.update(_recs(0, {"a": [True, True]}), step=2)  # a saturated, b unseen (moving)
    assert r1.ts == 0.5 and not r1.stop
    r2 = tr.update(_recs(2, {"b": [True, False]}), step=4)  # b plateaus at 0.5; a keeps its status
    assert r2.ts == 1.0 and r2.stop and tr.windows == 2
    tr2 = SaturationTracker({"a": 0.5}, {"a": "t"}, StagnationSettings(min_windows=3, epsilon=0.1))
    assert not tr2.update(_recs(0, {"a": [True]}), 1).stop  # saturated but before min_windows
    assert not tr2.update([], 2).stop
    assert tr2.update([], 3).stop


def test_below_threshold_keeps_training() -> None:
    cfg = StagnationSettings(threshold=0.7, epsilon=0.05, min_windows=1, plateau_z=0)
    tr = SaturationTracker({f"s{i}": 0.25 for i in range(10)}, {f"s{i}": "t" for i in range(10)}, cfg)
    rep = tr.update(_recs(0, {f"s{i}": [True, False] for i in range(10)}), 8)  # 0.25 -> 0.5: all moving
    assert rep.ts == 0.0 and not rep.stop


def test_noise_band_reads_a_change_of_a_few_rollouts_as_a_plateau() -> None:
    """|dSR| < z * se of a binomial difference is a plateau; a change far beyond it is movement; z = 0 is ε alone."""
    cfg = StagnationSettings(threshold=0.7, epsilon=0.1, min_windows=1, plateau_z=1.0)
    tr = SaturationTracker({"a": 0.5, "b": 0.25}, {"a": "t", "b": "t"}, cfg, initial_rollouts=4)
    # se(0.5 vs 0.625 | 4 and 8 rollouts) ~ 0.30 -> plateau; 0.25 -> 1.0 is saturated, not moving
    assert tr.band(0.5, 4, 0.625, 8) == pytest.approx((0.5833 * 0.4167 * (1 / 4 + 1 / 8)) ** 0.5, abs=1e-3)
    rep = tr.update(_recs(0, {"a": [True] * 5 + [False] * 3, "b": [True] * 8}), 8)
    assert tr.status == {"a": "plateau", "b": "saturated"} and rep.stop
    big = SaturationTracker({"a": 0.0, "b": 0.25}, {"a": "t", "b": "t"}, cfg, initial_rollouts=64)
    big.update(_recs(0, {"a": [True] * 48 + [False] * 16, "b": [True] * 16 + [False] * 48}), 8)
    assert big.status == {"a": "moving", "b": "plateau"}  # 0 -> 0.75 over 64 rollouts each is movement
    eps_only = SaturationTracker({"a": 0.5}, {"a": "t"}, StagnationSettings(min_windows=1, plateau_z=0),
                                 initial_rollouts=4)
    eps_only.update(_recs(0, {"a": [True] * 5 + [False] * 3}), 8)
    assert eps_only.status == {"a": "moving"}


def test_unvisited_samples_count_only_when_asked() -> None:
    """By default TS_i is over the samples the phase rolled out (a phase that visits each sample once can still stop);
    with count_unvisited the others count as moving; no sample seen yet is TS 0, an empty buffer TS 1."""
    ids = {f"s{i}": "t" for i in range(4)}
    visited = SaturationTracker(dict.fromkeys(ids, 0.5), ids, StagnationSettings(min_windows=1))
    rep = visited.update(_recs(0, {"s0": [True] * 4 + [False] * 4}), 8)
    assert rep.ts == 1.0 and rep.stop
    assert visited.update([], 16).ts == 1.0
    unvisited = SaturationTracker(dict.fromkeys(ids, 0.5), ids, StagnationSettings(min_windows=1,
                                                                                   count_unvisited=True))
    assert unvisited.update(_recs(0, {"s0": [True] * 4 + [False] * 4}), 8).ts == 0.25
    assert SaturationTracker(dict.fromkeys(ids, 0.5), ids, StagnationSettings()).update([], 8).ts == 0.0
    assert SaturationTracker({}, {}, StagnationSettings(min_windows=1)).update([], 8).stop


def test_callback_stops_on_window_boundary() -> None:
    cfg = StagnationSettings(threshold=0.5, window=2, epsilon=0.1, min_windows=1)
    rec = RewardRecorder(None)
    cb = StagnationCallback(SaturationTracker({"a": 0.5}, {"a": "t"}, cfg), rec)
    control = SimpleNamespace(should_training_stop=False)
    rec.record(0, ["a", "a"], [1.0, 0.0], [True, False])
    cb.on_step_end(None, SimpleNamespace(global_step=1), control)  # not a window boundary
    assert not cb.reports and not control.should_training_stop
    rec.record(1, ["a", "a"], [1.0, 0.0], [True, False])
    cb.on_step_end(None, SimpleNamespace(global_step=2), control)
    assert len(cb.reports) == 1 and cb.reports[0].seen == 1
    assert control.should_training_stop and cb.stopped_at == 2


def test_nan_guard_raises_a_training_error() -> None:
    g = NaNGuard("SFT")
    g.on_log(None, SimpleNamespace(global_step=3), None, logs={"loss": 1.5})
    with pytest.raises(TrainingError, match=r"SFT phase: loss is nan at step 3.*--resume"):
        g.on_log(None, SimpleNamespace(global_step=3), None, logs={"loss": float("nan")})
    with pytest.raises(TrainingError, match="grad_norm is inf"):
        g.on_log(None, SimpleNamespace(global_step=4), None, logs={"grad_norm": float("inf")})


def test_budget_callback() -> None:
    control = SimpleNamespace(should_training_stop=False)
    cb = BudgetCallback(float("inf"))
    cb.on_train_begin(None, None, control)
    cb.on_step_end(None, None, control)
    assert not control.should_training_stop
    cb = BudgetCallback(0.0)
    cb.on_train_begin(None, None, control)
    cb.on_step_end(None, None, control)
    assert control.should_training_stop and cb.exhausted
