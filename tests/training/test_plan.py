"""The step plan of a run, per mode: which steps run, in which order, under which state.json names."""

from __future__ import annotations

import pytest

from training.metaloop_config import load_metaloop_config
from training.plan import LOOP_STEPS, plan


def _names(*overrides: str) -> list[str]:
    cfg = load_metaloop_config(None, ["model.build_tiny=tiny", "sft.self_weight=1", *overrides])
    return [s.name for s in plan(cfg)]


def test_dppo_runs_rl_diagnosis_and_sft_every_loop() -> None:
    assert _names("loops=2") == [
        "prepare", "eval_base",
        "k1/difficulty", "k1/rl", "k1/eval_rl", "k1/diagnosis", "k1/sft", "k1/eval",
        "k2/difficulty", "k2/rl", "k2/eval_rl", "k2/diagnosis", "k2/sft", "k2/eval",
    ]


def test_grpo_only_drops_diagnosis_sft_and_the_extra_evaluation() -> None:
    assert _names("loops=2", "mode=grpo_only") == [
        "prepare", "eval_base", "k1/difficulty", "k1/rl", "k1/eval", "k2/difficulty", "k2/rl", "k2/eval"]


@pytest.mark.parametrize(("mode", "kind"), [("sft_only", "sft_random"), ("sft_pool", "sft_pool")])
def test_sft_modes_train_without_rl_or_diagnosis(mode: str, kind: str) -> None:
    steps = plan(load_metaloop_config(None, ["model.build_tiny=tiny", "loops=1", f"mode={mode}"]))
    assert [(s.name, s.kind) for s in steps] == [
        ("prepare", "prepare"), ("eval_base", "eval"), ("k1/sft", kind), ("k1/eval", "eval")]


def test_sft_then_rl_spends_the_teacher_once_then_runs_rl() -> None:
    steps = plan(load_metaloop_config(None, ["model.build_tiny=tiny", "loops=2", "mode=sft_then_rl"]))
    assert [(s.name, s.kind) for s in steps][2:] == [
        ("k1/sft", "sft_random"), ("k1/difficulty", "difficulty"), ("k1/rl", "rl"), ("k1/eval", "eval"),
        ("k2/difficulty", "difficulty"), ("k2/rl", "rl"), ("k2/eval", "eval")]


def test_pretraining_and_every_phase_evaluation_follow_the_recipe() -> None:
    assert _names("loops=1", "pretrain.steps=5", "eval.every_phase=false") == [
        "prepare", "pretrain", "eval_base", "k1/difficulty", "k1/rl", "k1/diagnosis", "k1/sft", "k1/eval"]


def test_steps_carry_their_loop_and_evaluation_tag() -> None:
    steps = plan(load_metaloop_config(None, ["model.build_tiny=tiny", "loops=2"]))
    evals = [(s.name, s.tag, s.loop) for s in steps if s.kind == "eval"]
    assert evals == [("eval_base", "base", 0), ("k1/eval_rl", "k1-rl", 1), ("k1/eval", "k1", 1),
                     ("k2/eval_rl", "k2-rl", 2), ("k2/eval", "k2", 2)]
    assert all(s.loop == int(s.name[1]) for s in steps if s.name.startswith("k"))


@pytest.mark.parametrize("mode", sorted(LOOP_STEPS))
def test_every_mode_has_a_plan_with_unique_step_names(mode: str) -> None:
    names = _names("loops=3", f"mode={mode}")
    assert len(names) == len(set(names)) and names[-1] == "k3/eval"


@pytest.mark.parametrize("mode", sorted(LOOP_STEPS))
def test_final_rl_closes_only_a_dppo_run_with_an_rl_half_step(mode: str) -> None:
    names = _names("loops=2", f"mode={mode}", "final_rl=true")
    if mode == "dppo":
        assert names == [*_names("loops=2"), "k3/difficulty", "k3/rl", "k3/eval"]
    else:
        assert names == _names("loops=2", f"mode={mode}")


def test_rft_rolls_out_then_trains_on_its_own_rollouts_without_rl_or_teacher() -> None:
    steps = plan(load_metaloop_config(None, ["model.build_tiny=tiny", "loops=2", "mode=rft", "sft.self_weight=4"]))
    assert [(s.name, s.kind) for s in steps][2:] == [
        ("k1/difficulty", "difficulty"), ("k1/sft", "sft_self"), ("k1/eval", "eval"),
        ("k2/difficulty", "difficulty"), ("k2/sft", "sft_self"), ("k2/eval", "eval")]


def test_rft_without_d_self_is_refused_naming_the_key() -> None:
    from dppo_embodied.errors import ConfigError

    with pytest.raises(ConfigError, match=r"sft\.self_weight"):
        load_metaloop_config(None, ["model.build_tiny=tiny", "mode=rft"])
    with pytest.raises(ConfigError, match=r"data\.env_tasks"):
        load_metaloop_config(None, ["model.build_tiny=tiny", "mode=rft", "sft.self_weight=1",
                                    "data.env_tasks=[dppo/TabletopPick-v0]"])
