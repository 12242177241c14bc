"""Recipes: the shipped ones load; bad values raise errors naming the key; production recipes pass --dry-run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dppo_embodied.errors import ConfigError
from training.metaloop_config import load_metaloop_config

RECIPES = Path(__file__).resolve().parents[2] / "training" / "recipes"


@pytest.mark.parametrize("name", ["demo.yaml", "qwen25vl_7b.yaml", "qwen25vl_72b.yaml"])
def test_shipped_recipes_load(name: str) -> None:
    cfg = load_metaloop_config(RECIPES / name)
    assert cfg.loops == 3 and cfg.mode == "dppo"


@pytest.mark.parametrize("override,key", [
    ("grpo.learning_rate=abc", "grpo.learning_rate"),
    ("grpo.num_generations=1", "grpo.num_generations"),
    ("grpo.stagnation.threshold=1.5", "grpo.stagnation.threshold"),
    ("grpo.bogus=1", "grpo.bogus"),
    ("difficulty.intractable_sr=1.0", "difficulty.intractable_sr"),
    ("difficulty.max_task_share=0", "difficulty.max_task_share"),
    ("sft.ratios=[1,2]", "sft.ratios"),
    ("mode=rl_only", "mode"),
    ("sampling=greedy", "sampling"),
    ("loops=0", "loops"),
    ("data.capabilities=[spatial]", "data.capabilities[0]"),
    ("model.dtype=int8", "model.dtype"),
    ("teacher.kind=openai", "teacher.base_url"),
    ("report_to=[neptune]", "report_to[0]"),
])
def test_bad_values_name_the_key(override: str, key: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_metaloop_config(RECIPES / "demo.yaml", [override])
    assert key in str(e.value)


def test_unknown_trainer_field_names_the_key() -> None:
    from training.grpo_phase import grpo_args

    cfg = load_metaloop_config(RECIPES / "demo.yaml", ["grpo.trainer={use_vlm: true}"])
    with pytest.raises(ConfigError, match=r"grpo\.trainer\.use_vlm: not a field of trl\.GRPOConfig"):
        grpo_args(cfg.grpo, "/tmp/x", [], 0, 1)


def test_horizon_schedule_repeats_last_value() -> None:
    cfg = load_metaloop_config(RECIPES / "qwen25vl_7b.yaml", ["horizon_schedule=[32, 64]"])
    assert [cfg.horizon_for(k) for k in (1, 2, 3)] == [32, 64, 64]
    assert load_metaloop_config(RECIPES / "demo.yaml").horizon_for(2) is None


@pytest.mark.parametrize("name,size", [("qwen25vl_7b.yaml", 8.29), ("qwen25vl_72b.yaml", 73.4)])
def test_production_recipe_dry_run(name: str, size: float, capsys: pytest.CaptureFixture[str]) -> None:
    from training.run import main

    assert main(["--config", str(RECIPES / name), "--dry-run"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["model"]["params_b"] == pytest.approx(size, abs=0.05)
    assert report["grpo"]["use_vllm"] and report["grpo"]["bf16"]
    assert report["teacher"]["kind"] == "openai" and report["accelerate"]["num_processes"] == 8
    assert any("vllm" in w for w in report["warnings"])  # not installable on this CPU machine: a warning


def test_dry_run_reports_bad_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from training.run import main

    recipe = RECIPES / "qwen25vl_7b.yaml"
    assert main(["--config", str(recipe), "--dry-run", "grpo.trainer.vllm_mode=sideways"]) == 1
    assert "grpo.trainer" in capsys.readouterr().err
    assert main(["--config", str(recipe), "--dry-run", "accelerate_config=missing.yaml"]) == 1
    assert "accelerate_config: missing.yaml does not exist" in capsys.readouterr().err
    assert main(["--config", str(recipe), "--dry-run", "data.env_tasks=[dppo/Nope-v0]"]) == 1
    assert "data.env_tasks[0]" in capsys.readouterr().err
