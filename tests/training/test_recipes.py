"""Recipes: the shipped ones load; bad values raise errors naming the key; production recipes pass --dry-run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dppo_embodied.errors import ConfigError
from training.metaloop_config import load_metaloop_config

RECIPES = Path(__file__).resolve().parents[2] / "training" / "recipes"


@pytest.mark.parametrize("name", ["demo.yaml", "qwen25vl_7b.yaml", "qwen25vl_72b.yaml", "qwen25vl_7b_2nodes.yaml"])
def test_shipped_recipes_load(name: str) -> None:
    cfg = load_metaloop_config(RECIPES / name)
    assert cfg.loops == 3 and cfg.mode == "dppo"


def test_ablation_v2_recipe_differs_from_v1_only_as_registered() -> None:
    """docs/ablation.md section 12 lists what protocol v2 changes; nothing else may differ."""
    from dataclasses import asdict

    from training.runs.run_config import config_diff

    v1, v2 = (asdict(load_metaloop_config(RECIPES / n)) for n in ("ablation.yaml", "ablation_v2.yaml"))
    changed = {key for key, _, _ in config_diff(v1, v2)}  # where a run lives (output_dir) is not compared
    assert changed == {
        "name", "pretrain.task_share", "difficulty.temperature", "grpo.temperature",
        "eval.sampled_temperature", "grpo.max_steps", "grpo.stagnation.epsilon", "grpo.stagnation.plateau_z",
        "grpo.stagnation.count_unvisited", "sft.max_steps", "sft.size", "sft.ratios", "sft.weak_max",
        "sft.assoc_max", "sft.teacher_samples"}, changed


def test_ablation_v3_recipe_differs_from_v2_only_as_registered() -> None:
    """docs/ablation.md section 13 lists what protocol v3 changes; nothing else may differ."""
    from dataclasses import asdict

    from training.runs.run_config import config_diff

    v2, v3 = (asdict(load_metaloop_config(RECIPES / n)) for n in ("ablation_v2.yaml", "ablation_v3.yaml"))
    assert {key for key, _, _ in config_diff(v2, v3)} == {"name", "data.general_suite", "sft.self_weight"}


def test_ablation_v4_recipe_differs_from_v3_only_as_registered() -> None:
    """docs/ablation.md section 14 lists what protocol v4 changes; nothing else may differ."""
    from dataclasses import asdict

    from training.runs.run_config import config_diff

    v3, v4 = (asdict(load_metaloop_config(RECIPES / n)) for n in ("ablation_v3.yaml", "ablation_v4.yaml"))
    assert {key for key, _, _ in config_diff(v3, v4)} == {"name", "final_rl"}


def test_ablation_v5_recipe_differs_from_v4_only_as_registered() -> None:
    """docs/ablation.md section 15 lists what protocol v5 changes; nothing else may differ."""
    from dataclasses import asdict

    from training.runs.run_config import config_diff

    v4, v5 = (asdict(load_metaloop_config(RECIPES / n)) for n in ("ablation_v4.yaml", "ablation_v5.yaml"))
    assert {key for key, _, _ in config_diff(v4, v5)} == {
        "name", "final_rl", "budget_rule", "pretrain.task_share", "grpo.max_steps", "sft.max_steps", "sft.assoc_max",
        "sft.weak_max"}


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
    ("data.templates=[exists,shape_of_color,count_color,foo]", "data.templates[3]: unknown template 'foo'"),
    ("data.templates=['']", "data.templates[0]"),
    ("data.image_size=1000000000", "data.image_size: must be an integer number of pixels in 32..1024"),
    ("data.image_size=8", "data.image_size"),
    ("sft.self_weight=-1", "sft.self_weight: must be >= 0"),
    ("pretrain.task_share=0", "pretrain.task_templates: names the templates of the task samples"),
])
def test_bad_values_name_the_key(override: str, key: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_metaloop_config(RECIPES / "demo.yaml", [override])
    assert key in str(e.value)


def test_unknown_trainer_field_names_the_key() -> None:
    from training.phases.grpo import grpo_args

    cfg = load_metaloop_config(RECIPES / "demo.yaml", ["grpo.trainer={use_vlm: true}"])
    with pytest.raises(ConfigError, match=r"grpo\.trainer\.use_vlm: not a field of trl\.GRPOConfig"):
        grpo_args(cfg.grpo, "/tmp/x", [], 0, 1)


def test_horizon_schedule_repeats_last_value() -> None:
    cfg = load_metaloop_config(RECIPES / "qwen25vl_7b.yaml", ["horizon_schedule=[32, 64]"])
    assert [cfg.horizon_for(k) for k in (1, 2, 3)] == [32, 64, 64]
    assert load_metaloop_config(RECIPES / "demo.yaml").horizon_for(2) is None


def test_unknown_template_lists_the_valid_ones() -> None:
    from envs.qa import templates_for

    with pytest.raises(ConfigError) as e:
        load_metaloop_config(RECIPES / "demo.yaml", ["data.templates=[exists,nope]"])
    assert "data.templates[1]: unknown template 'nope'" in str(e.value)
    assert all(t in str(e.value) for group in templates_for("tabletop-qa").values() for t in group)
    with pytest.raises(ConfigError, match=r"data\.templates: none of \['left_of'\]"):
        load_metaloop_config(RECIPES / "demo.yaml", ["data.templates=[left_of]",
                                                     "data.capabilities=[perception_grounding]"])
    # a custom generator has its own templates: not checked against envs.qa's
    cfg = load_metaloop_config(RECIPES / "demo.yaml", ["data.generator=tests.training.synthetic:generate",
                                                       "data.templates=[colour]"])
    assert cfg.data.templates == ["colour"]
    # the perception stage's templates are checked the same way
    with pytest.raises(ConfigError, match=r"pretrain\.task_templates\[1\]: unknown template 'bogus'"):
        load_metaloop_config(RECIPES / "demo.yaml", ["pretrain.task_share=0.5",
                                                     "pretrain.task_templates=[count_all,bogus]"])


def test_focus_self_needs_focus_steps_and_d_self() -> None:
    for bad in ("sft.self_weight=0", "sft.focus_steps=0"):
        with pytest.raises(ConfigError, match=r"sft\.focus_self: mixes D_self into the focus steps; set"):
            load_metaloop_config(RECIPES / "demo.yaml", ["sft.focus_self=true", bad])
    assert load_metaloop_config(RECIPES / "demo.yaml", ["sft.focus_self=true"]).sft.focus_self


@pytest.mark.parametrize("name,size", [("qwen25vl_7b.yaml", 8.29), ("qwen25vl_72b.yaml", 73.4)])
def test_production_recipe_dry_run(name: str, size: float, capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from training.scripts.run import main

    monkeypatch.chdir(tmp_path)  # the recipe's accelerate_config is relative to the recipe, not to the cwd
    assert main(["--config", str(RECIPES / name), "--dry-run"]) == 0
    report = json.loads(capsys.readouterr().out)
    acc = Path(report["accelerate"]["file"])
    assert acc.is_absolute() and acc.parent == RECIPES / "accelerate"
    assert report["ok"] and report["model"]["params_b"] == pytest.approx(size, abs=0.05)
    assert report["grpo"]["use_vllm"] and report["grpo"]["bf16"]
    assert report["teacher"]["kind"] == "openai" and report["accelerate"]["num_processes"] == 8
    assert any("vllm" in w for w in report["warnings"])  # not installable on this CPU machine: a warning
    rollout = report["rollout"]  # every generation outside GRPO on vLLM replicas, time-shared with training
    assert rollout["engine"] == "server" and rollout["kind"] == "vllm" and rollout["layout"].startswith("time-shared")
    assert rollout["replicas_per_node"] * rollout["gpus_per_replica"] == 8
    assert any("rollout.server.kind vllm" in w for w in report["warnings"])


def test_multi_node_recipe_dry_run(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from training.scripts.run import main

    monkeypatch.chdir(tmp_path)
    assert main(["--config", str(RECIPES / "qwen25vl_7b_2nodes.yaml"), "--dry-run"]) == 0
    report = json.loads(capsys.readouterr().out)
    acc = report["accelerate"]
    assert (acc["num_machines"], acc["num_processes"], acc["processes_per_node"]) == (2, 16, 8)
    assert report["rollout"]["nodes"] == 2 and report["rollout"]["replicas"] == 16  # one fleet of 8 per node


@pytest.mark.parametrize("overrides,message", [
    (["rollout.server.replicas=3", "rollout.server.gpus_per_replica=4"], "each node runs 8 training processes"),
    (["rollout.server.release_model=false"], "while release_model is false"),
    (["rollout.server.gpus=[0, 1, 2, 3]", "rollout.server.replicas=2", "rollout.server.gpus_per_replica=1"],
     "need 2 GPU indices"),
])
def test_dry_run_checks_the_rollout_gpus(overrides: list[str], message: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from training.scripts.run import main

    assert main(["--config", str(RECIPES / "qwen25vl_7b.yaml"), "--dry-run", *overrides]) == 1
    err = capsys.readouterr().err
    assert "rollout.server.gpus" in err and message in err


def test_dry_run_accepts_separate_rollout_gpus(capsys: pytest.CaptureFixture[str]) -> None:
    from training.scripts.run import main

    args = ["rollout.server.release_model=false", "rollout.server.replicas=2", "rollout.server.gpus=[8, 9]"]
    assert main(["--config", str(RECIPES / "qwen25vl_7b.yaml"), "--dry-run", *args]) == 0
    layout = json.loads(capsys.readouterr().out)["rollout"]["layout"]
    assert "separate GPUs" in layout and "10 GPUs per node" in layout


def test_dry_run_reports_bad_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from training.scripts.run import main

    recipe = RECIPES / "qwen25vl_7b.yaml"
    assert main(["--config", str(recipe), "--dry-run", "grpo.trainer.vllm_mode=sideways"]) == 1
    assert "grpo.trainer" in capsys.readouterr().err
    assert main(["--config", str(recipe), "--dry-run", "accelerate_config=missing.yaml"]) == 1
    assert "accelerate_config: missing.yaml does not exist" in capsys.readouterr().err  # command line: cwd-relative
    assert main(["--config", str(recipe), "--dry-run", "data.env_tasks=[dppo/Nope-v0]"]) == 1
    assert "data.env_tasks[0]" in capsys.readouterr().err


def test_accelerate_config_relative_to_the_recipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from training.scripts.dry_run import _accelerate

    folder = tmp_path / "recipes"
    (folder / "acc").mkdir(parents=True)
    (folder / "acc" / "ddp.yaml").write_text("distributed_type: MULTI_CPU\nnum_processes: 2\n")
    recipe = folder / "r.yaml"
    recipe.write_text((RECIPES / "demo.yaml").read_text() + "\naccelerate_config: acc/ddp.yaml\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = load_metaloop_config(recipe)
    assert cfg.accelerate_config == str(folder.resolve() / "acc" / "ddp.yaml")
    assert _accelerate(cfg.accelerate_config, [])["num_processes"] == 2  # type: ignore[index]
    # the same relative path on the command line is relative to the working directory
    cfg = load_metaloop_config(recipe, ["accelerate_config=acc/ddp.yaml"])
    assert cfg.accelerate_config == "acc/ddp.yaml"
    with pytest.raises(ConfigError, match="relative to the recipe's folder"):
        _accelerate(cfg.accelerate_config, [])
    absolute = str(folder / "acc" / "ddp.yaml")
    recipe.write_text((RECIPES / "demo.yaml").read_text() + f"\naccelerate_config: {absolute}\n")
    assert load_metaloop_config(recipe).accelerate_config == absolute


@pytest.mark.parametrize("dry_run", [True, False])
def test_output_dir_that_is_a_file_is_refused(dry_run: bool, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from training.scripts.run import main

    a_file = tmp_path / "taken"
    a_file.write_text("not a folder")
    flags = ["--dry-run"] if dry_run else []
    for out, says in ((a_file, f"output_dir: {a_file} exists and is not a folder"),
                      (a_file / "run", f"output_dir: {a_file / 'run'} cannot be created because {a_file} is a file")):
        assert main(["--config", str(RECIPES / "demo.yaml"), *flags, "--output-dir", str(out)]) == 1
        assert says in capsys.readouterr().err
    assert a_file.read_text() == "not a folder"


def test_output_dir_check_accepts_new_and_existing_folders(tmp_path: Path) -> None:
    from training.scripts.dry_run import check_output_dir

    assert check_output_dir(tmp_path) == tmp_path
    assert check_output_dir(tmp_path / "new" / "run") == tmp_path / "new" / "run"
    assert not (tmp_path / "new").exists()  # checking creates nothing
