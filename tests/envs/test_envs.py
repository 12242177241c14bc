"""Closed-loop text envs: check_env and determinism over the whole registry, experts, bad input, typed errors."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from dppo_embodied.errors import ConfigError, EnvError, UnknownNameError
from dppo_embodied.imports import is_available
from envs.experts import expert_action
from envs.rollout import run_episode

pytest.importorskip("mujoco")

TABLETOP = [i for i in envs.env_ids() if "Tabletop" in i]
ALL = [pytest.param(i, marks=pytest.mark.skipif("PushT" in i and not is_available("gym_pusht"),
                                                reason="gym-pusht not installed")) for i in envs.env_ids()]
BAD_TEXTS: list[Any] = [
    "", "hello", None, 42, b"\xff\xfe", "{", '{"action": {"type": "point", "x": 7, "y": -3}}',
    '{"action": {"type": "point", "x": NaN, "y": 0.5}}', '{"action": {"type": "fly"}}',
    '{"action": {"type": "skill", "name": "pick", "object": "unicorn"}}',
    '{"action": {"type": "skill", "name": "teleport"}}', '{"action": {"type": "point", "x": 0.02, "y": 0.02}}',
    '{"action": {"type": "point", "x": 0.5, "y": 0.5, "then": "place"}}', "\u2603" * 50_000,
    '{"action": {"type": "move", "dx_cm": 1e308, "dy_cm": -1e308, "dz_cm": 5, "gripper": "close"}}',
    '{"action": {"type": "skill", "name": "push", "object": "red_block", "target": "sideways"}}',
    '[{"action": {"type": "done"}}]' * 100,
]


@pytest.mark.parametrize("env_id", ALL)
def test_check_env(env_id: str) -> None:
    env = envs.make(env_id, include_state=True)
    try:
        check_env(env.unwrapped, skip_render_check=True)
    finally:
        env.close()


@pytest.mark.parametrize("env_id", ALL)
def test_same_seed_same_actions_same_frames(env_id: str) -> None:
    actions = ['{"action": {"type": "point", "x": 0.45, "y": 0.6, "then": "grasp"}}',
               '{"action": {"type": "move", "dx_cm": 3, "dy_cm": -2, "dz_cm": 1}}',
               '{"action": {"type": "point", "x": 0.6, "y": 0.55, "then": "place"}}', "garbage"]
    runs = []
    for _ in range(2):
        env = envs.make(env_id)
        obs, _ = env.reset(seed=123)
        frames = [obs["image"]]
        for a in actions:
            obs, *_ = env.step(a)
            frames.append(obs["image"])
        env.close()
        runs.append(frames)
    assert all(np.array_equal(a, b) for a, b in zip(*runs, strict=True))
    env = envs.make(env_id)
    other = env.reset(seed=124)[0]["image"]
    env.close()
    assert not np.array_equal(other, runs[0][0])


@pytest.mark.parametrize("env_id", TABLETOP)
def test_expert_solves_every_task(env_id: str) -> None:
    env = envs.make(env_id)
    results = [run_episode(env, lambda obs: expert_action(env), seed=s) for s in range(4)]
    env.close()
    assert all(r.success and r.invalid == 0 for r in results), [(r.seed, r.transcript[-1]) for r in results]
    for r in results:
        assert r.transcript[-1]["is_success"] and r.progress == 1.0
        assert r.total_reward == pytest.approx(r.transcript[-1]["progress"] - 0 + 1.0, abs=1.0)
        assert all(t["parse_ok"] for t in r.transcript)


def test_expert_thought_parses() -> None:
    env = envs.make("dppo/TabletopPlace-v0")
    env.reset(seed=0)
    text = expert_action(env, thought=True)
    assert '"thought"' in text
    _, _, _, _, info = env.step(text)
    assert info["parse_ok"] and info["executed"]
    env.close()


@pytest.mark.parametrize("env_id", ALL)
def test_no_text_crashes_an_env(env_id: str) -> None:
    env = envs.make(env_id, max_invalid=1000, horizon=len(BAD_TEXTS) + 1)
    obs, info = env.reset(seed=0)
    assert info["parse_ok"] and info["invalid_count"] == 0
    for t in BAD_TEXTS:
        obs, reward, terminated, truncated, info = env.step(t)
        assert env.observation_space.contains(obs)
        assert isinstance(reward, float) and np.isfinite(reward)
        assert set(info) >= {"is_success", "progress", "parse_ok", "parse_error", "command", "invalid_count"}
        if not info["parse_ok"]:
            assert obs["feedback"].startswith("Last action is invalid:") and info["parse_error"]
        if terminated or truncated:
            obs, info = env.reset(seed=1)
    env.close()


def test_invalid_actions_run_no_physics_and_terminate() -> None:
    env = envs.make("dppo/TabletopPick-v0", max_invalid=3)
    obs, _ = env.reset(seed=5)
    t0 = env.unwrapped.scene.time_s
    for k in range(3):
        obs, reward, terminated, truncated, info = env.step("not an action")
        assert env.unwrapped.scene.time_s == t0 and reward == 0.0 and info["invalid_count"] == k + 1
    assert terminated and not truncated and not info["is_success"]
    assert "3 invalid actions" in obs["feedback"]
    with pytest.raises(EnvError, match="reset"):
        env.step("{}")
    env.close()


def test_refused_actions_count_as_invalid() -> None:
    env = envs.make("dppo/TabletopPick-v0")
    env.reset(seed=2)
    _, _, _, _, info = env.step('{"action": {"type": "skill", "name": "place", "target": "table"}}')
    assert info["parse_ok"] and not info["executed"] and info["invalid_count"] == 1
    assert "not holding" in info["feedback"]
    env.close()


def test_horizon_truncates() -> None:
    env = envs.make("dppo/TabletopPush-v0", horizon=2)
    env.reset(seed=0)
    move = '{"action": {"type": "move", "dx_cm": 1}}'
    assert env.step(move)[3] is False
    _, _, terminated, truncated, _ = env.step(move)
    assert truncated and not terminated
    env.close()


def test_done_terminates_and_reward_is_progress_delta() -> None:
    env = envs.make("dppo/TabletopPlace-v0")
    env.reset(seed=3)
    p0 = env.unwrapped.progress
    _, r, _, _, info = env.step(expert_action(env))  # grasp
    assert r == pytest.approx(info["progress"] - p0)
    _, _, terminated, _, info = env.step('{"action": {"type": "done"}}')
    assert terminated and not info["is_success"]
    env.close()


def test_observation_contents() -> None:
    env = envs.make("dppo/TabletopStack-v0", include_state=True, image_size=64)
    obs, info = env.reset(seed=0)
    assert obs["image"].shape == (64, 64, 3) and obs["depth"].shape == (64, 64)
    assert obs["instruction"].startswith("Stack the ") and obs["feedback"] == ""
    assert obs["state"].shape == env.observation_space["state"].shape
    assert info["task"].startswith("stack ")
    env.close()


def test_gymnasium_make_works_too() -> None:
    env = gym.make("dppo/TabletopPick-v0")
    obs, _ = env.reset(seed=0)
    assert "image" in obs
    env.close()


def test_unknown_id_and_bad_values_are_typed() -> None:
    with pytest.raises(UnknownNameError, match="dppo/TabletopPick-v0"):
        envs.make("dppo/TabletopFly-v0")
    for kwargs, word in [({"image_size": 7}, "image_size"), ({"camera": "side"}, "camera"),
                         ({"horizon": 0}, "horizon"), ({"max_invalid": 0}, "max_invalid"),
                         ({"n_objects": [3, 2]}, "n_objects"), ({"skills": ("fly",)}, "skill"),
                         ({"imagesize": 64}, "image_size")]:
        with pytest.raises(ConfigError, match=word):
            envs.make("dppo/TabletopPick-v0", **kwargs)
    env = envs.make("dppo/TabletopPick-v0")
    with pytest.raises(gym.error.ResetNeeded):  # gymnasium's order-enforcing wrapper
        env.step("{}")
    with pytest.raises(EnvError, match="reset"):
        env.unwrapped.step("{}")
    with pytest.raises(EnvError, match="reset"):
        expert_action(env)


def test_run_episode_with_a_broken_policy() -> None:
    env = envs.make("dppo/TabletopPick-v0", max_invalid=4)
    res = run_episode(env, lambda obs: "I think I should pick it up", seed=0)
    assert not res.success and res.invalid == 4 and res.steps == 4 and res.terminated
    first = res.transcript[0]
    assert first["parse_ok"] is False and first["feedback"].startswith("Last action is invalid")
    res2 = run_episode(env, lambda obs: '{"action": {"type": "move", "dz_cm": 1}}', seed=0, max_steps=3)
    assert res2.steps == 3 and not res2.terminated
    assert res2.to_dict()["steps"] == 3
    with pytest.raises(EnvError):
        run_episode(env, lambda obs: "", seed=0, max_steps=0)
    env.close()


def test_the_observation_carries_everything_the_policy_sees() -> None:
    """History (last HISTORY_STEPS lines "{command} -> {feedback}") and the env's own skills are in the observation."""
    from dppo_embodied.episode import StepObservation, render_step
    from dppo_embodied.prompts import HISTORY_STEPS

    env = envs.make("dppo/TabletopPick-v0", skills=("pick", "home"))
    obs, _ = env.reset(seed=0)
    assert obs["history"] == () and obs["skills"] == ("pick", "home") and obs["feedback"] == ""
    obs, *_ = env.step("not\n an action")
    assert obs["history"] == (f"not an action -> {obs['feedback']}",)
    home = '{"action": {"type": "skill", "name": "home"}}'
    for _ in range(HISTORY_STEPS + 1):
        obs, *_ = env.step(home)
    assert len(obs["history"]) == HISTORY_STEPS and len(env.unwrapped.history) == HISTORY_STEPS + 2
    assert obs["history"][-1] == f"{home} -> Last action succeeded: moved to the rest pose"
    assert obs in env.observation_space
    conv = render_step(StepObservation.from_env(obs))
    assert "Available skills: pick, home." in conv.text and obs["history"][0] in conv.text
    env.close()
