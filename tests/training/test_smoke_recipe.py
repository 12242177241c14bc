"""training/recipes/smoke.yaml (the whole metaloop in about a minute), the estimated time of --dry-run and
`dppo train compare --dry-run` (what would run; nothing is run or written)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

import pytest

from training.metaloop_config import Mode, load_metaloop_config
from training.plan import plan
from training.scripts.estimate import estimate

RECIPES = Path(__file__).resolve().parents[2] / "training" / "recipes"
SMOKE = RECIPES / "smoke.yaml"


def test_smoke_recipe_covers_every_step_of_the_metaloop() -> None:
    cfg = load_metaloop_config(SMOKE)
    assert [s.name for s in plan(cfg)] == ["prepare", "pretrain", "eval_base", "k1/difficulty", "k1/rl",
                                           "k1/eval_rl", "k1/diagnosis", "k1/sft", "k1/eval"]
    assert cfg.data.env_tasks and cfg.model.build_tiny
    est = estimate(cfg)
    assert est["total_s"] is not None and 10 < est["total_s"] < 120, est  # about a minute on 2 cores
    assert est["total_s"] < estimate(load_metaloop_config(RECIPES / "demo.yaml"))["total_s"]


@pytest.mark.parametrize("mode", get_args(Mode))
def test_every_mode_has_an_estimate(mode: str) -> None:
    extra = ["data.env_tasks=[]"] if mode == "rft" else []  # rft refuses closed-loop tasks (no texts to train on)
    est = estimate(load_metaloop_config(SMOKE, [f"mode={mode}", "sft.self_weight=1", *extra]))
    assert est["total_s"] > 0 and "eval" in est["steps"]


def test_the_estimate_counts_the_closing_rl_half_step() -> None:
    plain, closed = (estimate(load_metaloop_config(SMOKE, [f"final_rl={v}"]))["steps"] for v in ("false", "true"))
    assert closed["rl"] == pytest.approx(2 * plain["rl"], abs=0.2)
    assert closed["difficulty"] == pytest.approx(2 * plain["difficulty"], abs=0.2)
    assert closed["sft"] == plain["sft"]


def test_dry_run_prints_the_estimated_time(capsys: pytest.CaptureFixture[str]) -> None:
    from training.scripts.run import main

    assert main(["--config", str(SMOKE), "--dry-run"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["estimated_time"]["total_s"] > 0 and "rl" in report["estimated_time"]["steps"]
    real = estimate(load_metaloop_config(RECIPES / "qwen25vl_7b.yaml"))
    assert real["total_s"] is None and "gpu_bench" in real["basis"]


def test_compare_dry_run_runs_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from training.scripts.compare import main

    out = tmp_path / "cmp"
    assert main(["--config", str(SMOKE), "--output-dir", str(out), "--dry-run", "--variants", "grpo_only"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert list(res["variants"]) == ["dppo", "grpo_only"]
    assert res["variants"]["grpo_only"]["overrides"] == ["mode=grpo_only", "sampling=difficulty"]
    assert res["estimated_time_s"] > estimate(load_metaloop_config(SMOKE))["total_s"]
    assert not out.exists()
    assert main(["--config", str(SMOKE), "--dry-run", "--variants", "rl_only"]) == 1
    assert "unknown variant" in capsys.readouterr().err


@pytest.mark.slow
def test_smoke_recipe_runs_the_whole_metaloop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from training.cli import main

    out = tmp_path / "smoke"
    assert main(["--config", str(SMOKE), "--output-dir", str(out), "--no-progress"]) == 0
    state = json.loads((out / "state.json").read_text())
    assert state["completed"] == [s.name for s in plan(load_metaloop_config(SMOKE))]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scale"] == "0-100" and (out / summary["checkpoint"] / "config.json").is_file()


def test_compare_estimate_counts_pre_training_once() -> None:
    from training.scripts.compare import estimated_time

    cfg = load_metaloop_config(RECIPES / "ablation.yaml")
    shared, full = estimate(cfg, loops=0), estimate(cfg)
    pre = shared["steps"]["pretrain"]
    assert pre > 0  # the recipe pre-trains its base
    one, three = (estimated_time(cfg, n, variants=2, jobs=1)["estimated_time_s"] for n in (1, 3))
    per_seed = full["total_s"] + (full["total_s"] - shared["total_s"]) - pre
    assert one == pytest.approx(pre + per_seed, abs=0.2)
    assert three - one == pytest.approx(2 * per_seed, abs=0.2)  # later seeds load the base, they do not pre-train
