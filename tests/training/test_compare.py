"""`dppo train compare`: seeds from one shared base, budgets matched to DPPO's, compare.json schema and CI maths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dppo_embodied.io import read_json
from tests.training.conftest import TINY_OVERRIDES
from training.runs.report import read_evals
from training.scripts.ablation_stats import mean_ci95, paired_difference


def test_compare_two_seeds_teacher_axis(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from training.scripts.compare import main

    recipe = tmp_path / "tiny.yaml"
    recipe.write_text("name: tiny\n")
    out = tmp_path / "cmp"
    args = ["--config", str(recipe), "--output-dir", str(out), "--no-progress", "--seeds", "2", "--axis", "teacher",
            "--variants", "dppo,grpo_only,sft_only", "--metric", "sampled", *TINY_OVERRIDES, "eval.sampled_k=2"]
    assert main(args) == 0
    assert "| dppo-sft_only |" in capsys.readouterr().out
    res = read_json(out / "compare.json")
    assert res["axis"] == "teacher" and res["seeds"] == [0, 1] and res["variants_order"] == ["dppo", "grpo_only",
                                                                                              "sft_only"]
    for name, v in res["variants"].items():
        assert set(v) >= {"final_mean", "final_ci95", "per_seed", "compute_s", "teacher_calls", "curves"}
        finals = [v["per_seed"][s] for s in ("0", "1")]
        m, ci = mean_ci95(finals)
        assert v["final_mean"] == pytest.approx(m) and v["final_ci95"] == pytest.approx(ci)
        for s in ("0", "1"):  # every run starts from its seed's shared base and ends on its summary's number
            summary = read_json(out / f"seed{s}" / name / "summary.json")
            # primary: pass@1 over k sampled answers; greedy rides along as the secondary metric
            assert summary["sampled"]["final"] == v["per_seed"][s] and summary["sampled"]["k"] == 2
            assert summary["final"]["overall"] == v["greedy"]["per_seed"][s]
            assert v["loops"][s] == summary["loops_done"] >= 1
            assert 0 <= summary["sampled"]["final"] <= 100
            (base,) = read_evals(out / f"seed{s}" / "base")
            assert summary["curve"][0]["overall"] == base["heldout"]["overall"]
            assert summary["curve"][0]["sampled"] == base["heldout_sampled"]["overall"]
    for key in ("dppo-grpo_only", "dppo-sft_only"):
        p = res["paired"][key]
        want = paired_difference(res["variants"]["dppo"]["per_seed"], res["variants"][key[5:]]["per_seed"])
        assert p["mean"] == pytest.approx(want["mean"]) and p["ci95"] == pytest.approx(want["ci95"])
        g = res["paired_greedy"][key]
        want = paired_difference(res["variants"]["dppo"]["greedy"]["per_seed"],
                                 res["variants"][key[5:]]["greedy"]["per_seed"])
        assert g["mean"] == pytest.approx(want["mean"])
    # budgets: the baselines got DPPO's teacher calls of their seed, and never spent more
    for s in ("0", "1"):
        b = res["budgets"][s]["teacher_calls"]
        ov = read_json(out / f"seed{s}" / "sft_only.overrides.json")["overrides"]
        assert f"teacher.budget={max(1, b)}" in ov and f"seed={s}" in ov
        assert read_json(out / f"seed{s}" / "sft_only" / "summary.json")["teacher_calls"] <= max(1, b)
        assert read_json(out / f"seed{s}" / "grpo_only" / "summary.json")["teacher_calls"] == 0
    # seed 1 reuses seed 0's pre-built base model (one "pretrained VLM" for every replication)
    cfg1 = (out / "seed1" / "base" / "config.yaml").read_text()
    assert "build_tiny: null" in cfg1 and "seed0/base" in read_json(out / "seed1" / "base" / "state.json")[
        "model_path"]
    assert (out / "compare.png").stat().st_size > 1000
    assert (out / "compare.md").read_text().count("| dppo-") == 4  # sampled (primary) and greedy differences
    assert res["compute_budget_s"] is None and "DPPO's measured compute" in (out / "compare.md").read_text()
    # a finished comparison refuses to restart; --resume returns the same numbers without training again
    assert main(args) == 1
    assert main([*args, "--resume"]) == 0
    assert read_json(out / "compare.json")["variants"]["dppo"]["per_seed"] == res["variants"]["dppo"]["per_seed"]


def test_presets_and_dry_run(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from training.metaloop_config import load_metaloop_config
    from training.scripts.ablation_presets import PRESETS, budget_overrides, resolve
    from training.scripts.compare import main

    assert set(PRESETS) == {"main", "sampling", "loops", "stagnation", "reward_noise", "teacher"}
    for name, p in PRESETS.items():
        variants, axis = resolve(name, None)
        assert variants[0].name == "dppo" and axis == p.axis
    names = [v.name for v in resolve("stagnation", None)[0]]
    assert names == ["dppo", "ts0.5", "ts0.6", "ts0.8", "ts0.9"]
    cfg = load_metaloop_config(None, ["loops=3", "grpo.max_steps=10", "sft.max_steps=20", "sft.focus_steps=5"])
    one = resolve("loops", None)[0][1]
    ov = budget_overrides(one, "compute", cfg, 123.4, 50)
    assert "grpo.max_steps=30" in ov and "sft.max_steps=60" in ov and "compute_budget_s=123.400" in ov
    assert "sft.focus_steps=15" in ov
    assert not any(o.startswith("teacher.budget") for o in ov)  # compute axis: teacher calls not matched
    sft = resolve(None, ["sft_only"])[0][1]
    assert set(budget_overrides(sft, "teacher", cfg, 10.0, 50)) >= {"sft.teacher_samples=17", "teacher.budget=50"}
    noisy = resolve("reward_noise", ["noise25"])[0][1]
    assert budget_overrides(noisy, "teacher", cfg, 10.0, 50) == []  # free: its own schedule
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: r\n")
    assert main(["--config", str(recipe), "--preset", "teacher", "--dry-run", "--output-dir", str(tmp_path / "x"),
                 *TINY_OVERRIDES]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["plan"]["variants"] == ["dppo", "teacher_noisy", "teacher_weak", "sft_only_weak"]
    assert not (tmp_path / "x" / "compare_plan.json").exists() and "estimated_time" in plan
    assert main(["--config", str(recipe), "--variants", "dppo,nope", "--dry-run", *TINY_OVERRIDES]) == 1


def test_subprocess_variants_carry_their_bases_overrides(tmp_path: Path) -> None:
    """A ``--jobs 2`` variant resumes its base's config.yaml with --override-config: a non-first seed's variant must
    repeat its base's overrides (the shared pre-trained model, no pre-training), or resuming would undo them."""
    from dppo_embodied.io import atomic_write_json
    from training.metaloop_config import load_metaloop_config
    from training.scripts.ablation import Task, make_preparer
    from training.scripts.ablation_presets import resolve

    out = tmp_path / "cmp"
    (out / "seed0" / "base" / "base_model").mkdir(parents=True)
    atomic_write_json(out / "seed0" / "base" / "state.json", {"model_path": "base_model"})  # run-relative
    variants = {v.name: v for v in resolve(None, ["dppo", "sft_only"])[0]}
    prepare = make_preparer(out, [0, 1], variants, "teacher", load_metaloop_config(None, []))
    first, other = Task("seed0/dppo", out / "seed0" / "dppo", []), Task("seed1/dppo", out / "seed1" / "dppo", [])
    prepare(first)
    prepare(other)
    model = f"model.path={(out / 'seed0' / 'base' / 'base_model').resolve()}"
    assert model in other.overrides and "pretrain.steps=0" in other.overrides and "seed=1" in other.overrides
    assert not any(o.startswith("model.path") for o in first.overrides) and "seed=0" in first.overrides
    assert other.overrides == read_json(out / "seed1" / "dppo.overrides.json")["overrides"]


@pytest.mark.parametrize("fixed", [None, 50.0])
def test_compute_budget_fixed_or_dppos(tmp_path: Path, fixed: float | None) -> None:
    """``--compute-budget-s``: every run, DPPO included, gets the fixed budget; without it the matched variants get
    DPPO's measured compute of their seed and DPPO none. Teacher calls stay DPPO's either way."""
    from dppo_embodied.io import atomic_write_json
    from training.metaloop_config import load_metaloop_config
    from training.scripts.ablation import Task, make_preparer
    from training.scripts.ablation_presets import resolve

    out = tmp_path / "cmp"
    atomic_write_json(out / "seed0" / "dppo" / "summary.json", {"compute_s": 123.0, "teacher_calls": 7})
    variants = {v.name: v for v in resolve(None, ["dppo", "sft_only"])[0]}
    prepare = make_preparer(out, [0], variants, "teacher", load_metaloop_config(None, []), fixed)
    dppo, sft = Task("seed0/dppo", out / "seed0" / "dppo", []), Task("seed0/sft_only", out / "seed0" / "sft_only", [])
    prepare(dppo)
    prepare(sft)
    budget = [o for o in sft.overrides if o.startswith("compute_budget_s=")]
    assert budget == ["compute_budget_s=50.000" if fixed else "compute_budget_s=123.000"]
    assert "teacher.budget=7" in sft.overrides
    assert [o for o in dppo.overrides if o.startswith("compute_budget_s=")] == (["compute_budget_s=50.000"]
                                                                                  if fixed else [])


@pytest.mark.parametrize("cap", [None, 2])
def test_loop_cap_bounds_the_matched_variants_loops(tmp_path: Path, cap: int | None) -> None:
    """``--loop-cap``: a matched variant runs at most that many loops (loop for loop against DPPO's K); without it
    enough loops that the budget ends it. DPPO keeps its own K."""
    from dppo_embodied.io import atomic_write_json
    from training.metaloop_config import load_metaloop_config
    from training.scripts.ablation import Task, make_preparer
    from training.scripts.ablation_presets import resolve

    out = tmp_path / "cmp"
    atomic_write_json(out / "seed0" / "dppo" / "summary.json", {"compute_s": 123.0, "teacher_calls": 7})
    variants = {v.name: v for v in resolve(None, ["dppo", "dppo_random"])[0]}
    cfg = load_metaloop_config(None, ["loops=3"])
    prepare = make_preparer(out, [0], variants, "teacher", cfg, 50.0, cap)
    dppo, rnd = Task("seed0/dppo", out / "seed0" / "dppo", []), Task("seed0/dppo_random", out / "seed0" / "x", [])
    prepare(dppo)
    prepare(rnd)
    assert [o for o in rnd.overrides if o.startswith("loops=")][-1] == ("loops=2" if cap else "loops=40")
    assert not any(o.startswith("loops=") for o in dppo.overrides)


@pytest.mark.parametrize("flag,value,message", [("--compute-budget-s", "0", "--compute-budget-s must be > 0"),
                                                ("--loop-cap", "0", "--loop-cap must be >= 1")])
def test_budget_flags_reject_non_positive_values(tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str,
                                                 value: str, message: str) -> None:
    from training.scripts.compare import main

    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: r\n")
    assert main(["--config", str(recipe), flag, value, "--dry-run", "--output-dir",
                 str(tmp_path / "x"), *TINY_OVERRIDES]) == 1
    assert message in capsys.readouterr().err
