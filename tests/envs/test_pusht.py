"""dppo/PushT-v0: gym-pusht behind the text interface (skipped without gym-pusht)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("gym_pusht")

import envs


def test_point_maps_linearly_to_the_workspace() -> None:
    env = envs.make("dppo/PushT-v0", action_repeat=10)
    env.reset(seed=0)
    _, _, _, _, info = env.step('{"action": {"type": "point", "x": 0.78125, "y": 0.29296875}}')  # (400, 150)
    assert info["parse_ok"] and info["executed"]
    agent = np.asarray(env.unwrapped._env.agent.position)
    assert np.linalg.norm(agent - [400, 150]) < 15
    env.close()


def test_move_skill_and_garbage() -> None:
    env = envs.make("dppo/PushT-v0", max_invalid=2)
    env.reset(seed=1)
    _, _, _, _, info = env.step('{"action": {"type": "move", "dx_cm": 2, "dy_cm": 1}}')
    assert info["executed"]
    _, _, _, _, info = env.step('{"action": {"type": "skill", "name": "pick", "object": "t"}}')
    assert info["invalid_count"] == 1 and "skills are not available" in info["feedback"]
    _, _, terminated, _, info = env.step("??")
    assert terminated and info["invalid_count"] == 2
    env.close()


def test_observation_has_history_and_no_skills() -> None:
    env = envs.make("dppo/PushT-v0")
    obs, _ = env.reset(seed=0)
    assert obs["history"] == () and obs["skills"] == ()
    obs, *_ = env.step('{"action": {"type": "point", "x": 0.5, "y": 0.5}}')
    assert obs["history"] == (f'{{"action": {{"type": "point", "x": 0.5, "y": 0.5, "then": "move_to"}}}} -> '
                              f'{obs["feedback"]}',) and obs in env.observation_space
    env.close()
