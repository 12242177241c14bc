"""`dppo train compare`: variants from one shared base, equal compute budget, table + plot."""

from __future__ import annotations

from pathlib import Path

from dppo_embodied.io import read_json
from tests.training.conftest import TINY_OVERRIDES
from training.runs.report import read_evals


def test_compare_runs_variants_at_equal_compute(tmp_path: Path, capsys) -> None:
    from training.scripts.compare import main

    recipe = tmp_path / "tiny.yaml"
    recipe.write_text("name: tiny\n")
    out = tmp_path / "cmp"
    assert main(["--config", str(recipe), "--output-dir", str(out), "--no-progress",
                 "--variants", "dppo,grpo_only,sft_only", *TINY_OVERRIDES]) == 0
    assert "| dppo |" in capsys.readouterr().out
    res = read_json(out / "compare.json")
    budget = res["budget_s"]
    assert budget > 0 and set(res["variants"]) == {"dppo", "grpo_only", "sft_only"}
    (base_eval,) = read_evals(out / "base")
    base = base_eval["heldout"]["overall"]
    for name, v in res["variants"].items():
        assert v["curve"][0]["step"] == "base" and v["curve"][0]["overall"] == base  # one shared start
        if name != "dppo":  # each ablation stops once it has spent DPPO's compute (one phase of slack)
            assert v["compute_s"] >= budget * 0.5 or v["loops"] == 40
    assert (out / "compare.png").stat().st_size > 1000
    assert (out / "compare.md").read_text().count("\n| ") == 4
    assert read_json(out / "grpo_only" / "state.json")["completed"][:3] == ["prepare", "eval_base", "k1/difficulty"]
