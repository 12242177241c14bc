"""DAPO-style dynamic sampling: zero-variance prompts are dropped and refilled; the live stream feeds TRL."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import pytest

from training.algorithm.rewards import RewardRecord
from training.algorithm.stagnation import SaturationTracker
from training.phases.dynamic_sampling import DynamicSampler, reserve_order


def _rows(ids: list[str]) -> list[dict]:
    return [{"prompt": [], "images": [], "sample_id": i} for i in ids]


def _group(sid: str, successes: list[bool], step: int = 1) -> list[RewardRecord]:
    return [RewardRecord(step, sid, float(ok), ok) for ok in successes]


def test_zero_variance_groups_are_dropped_and_refilled_in_priority_order() -> None:
    dropped: list[tuple[str, str]] = []
    refilled: list[str] = []
    s = DynamicSampler(_rows(["a", "b", "c", "r1", "r2"]), active=["a", "b", "c"], reserve=["r1", "r2"], seed=0,
                       on_drop=lambda i, why: dropped.append((i, why)), on_refill=refilled.append)
    recs = _group("a", [True] * 4) + _group("b", [False] * 4) + _group("c", [True, False, True, True])
    assert s.observe(recs) == ["a", "b"]
    assert dropped == [("a", "saturated"), ("b", "stuck")] and refilled == ["r1", "r2"]
    assert sorted(s.active) == ["c", "r1", "r2"]  # the batch stays full of prompts with signal
    st = s.stats.to_json()
    assert st["groups"] == 3 and st["zero_variance"] == 2 and st["refilled"] == 2
    assert st["zero_variance_frac"] == pytest.approx(2 / 3)
    # the reserve is now empty: a further drop shrinks the active set and says so
    s.observe(_group("c", [False] * 4, step=2))
    assert sorted(s.active) == ["r1", "r2"] and s.stats.exhausted
    # records of ids the sampler does not manage (closed-loop episodes) are ignored
    assert s.observe(_group("episode#3", [True] * 4)) == []


def test_stream_draws_only_active_prompts_and_sees_drops_at_once() -> None:
    s = DynamicSampler(_rows(["a", "b", "r"]), active=["a", "b"], reserve=["r"], seed=1)
    first = [r["sample_id"] for r in islice(s.stream(), 4)]
    assert sorted(first) == ["a", "a", "b", "b"]  # one pass over the active set, then a new pass
    s.observe(_group("a", [True] * 8))
    later = {r["sample_id"] for r in islice(s.stream(), 6)}
    assert later == {"b", "r"}


def test_probe_prefilters_flat_prompts_before_they_cost_a_group() -> None:
    outcomes = {"easy": [True] * 4, "hard": [False] * 4, "mid": [True, False, False, True], "mid2": [True, False]}

    def probe(rows, k):
        return [outcomes[r["sample_id"]][:k] for r in rows]

    s = DynamicSampler(_rows(list(outcomes)), active=["easy", "hard"], reserve=["mid", "mid2"], seed=0,
                       probe=probe, probe_rollouts=4, max_tries=4)
    got = [r["sample_id"] for r in islice(s.stream(), 4)]
    assert set(got) <= {"mid", "mid2"}
    assert s.stats.dropped == {"probe_flat": 2} and s.stats.probe_rollouts >= 8


def test_reserve_order_and_tracker_hooks() -> None:
    sr = {"x": 0.0, "y": 0.5, "z": 0.75, "w": 1.0}
    order = reserve_order(list(sr), sr, "difficulty")
    assert order[:2] == ["y", "z"] and set(order[2:]) == {"x", "w"}  # SR closest to 1/2 first
    assert sorted(reserve_order(list(sr), sr, "random", seed=3)) == sorted(sr)
    from training.metaloop_config import StagnationSettings

    tr = SaturationTracker({"a": 0.5}, {"a": "t"}, StagnationSettings(min_windows=1, threshold=0.5,
                                                                       count_unvisited=True))
    tr.add("b", 0.25, "t")
    tr.mark("a", "stuck")
    rep = tr.update([], step=1)
    assert rep.ts == pytest.approx(0.5) and rep.stop  # a settled (dropped as stuck), b still moving
    tr = SaturationTracker({"a": 0.5}, {"a": "t"}, StagnationSettings(min_windows=1, threshold=0.5))
    tr.add("b", 0.25, "t")
    tr.mark("a", "stuck")  # a dropped sample was rolled out (probed): it counts; b not yet
    assert tr.update([], step=1).ts == pytest.approx(1.0)


def test_metaloop_rl_phase_with_dynamic_sampling(tmp_path: Path) -> None:
    from tests.training.conftest import TINY_OVERRIDES
    from training.metaloop import Metaloop
    from training.metaloop_config import load_metaloop_config
    from training.runs.state import read_json

    out = tmp_path / "dyn"
    cfg = load_metaloop_config(None, [*TINY_OVERRIDES, f"output_dir={out}", "mode=grpo_only",
                                      "grpo.dynamic_sampling.enabled=true", "grpo.dynamic_sampling.probe_rollouts=2",
                                      "difficulty.buffer_size=4"])
    Metaloop(cfg, progress=False).run()
    rl = read_json(out / "state.json")["values"]["k1/rl"]
    ds = rl["dynamic_sampling"]
    assert rl["steps"] == 4
    # TRL drew every prompt from the live stream: 2 prompts per step, plus at most one batch read ahead
    assert 8 <= ds["drawn"] <= 12 and ds["probed"] >= ds["drawn"]
    recs = (out / "rl" / "k1" / "rewards.rank0.jsonl").read_text().splitlines()
    assert len(recs) == 4 * 2 * 4  # steps x prompts x G completions, all scored
