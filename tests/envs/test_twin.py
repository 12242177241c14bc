"""The sim twin behind the Robot protocol (what ``dppo bridge --robot sim`` drives)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from dppo_embodied.errors import ConfigError, EnvError
from dppo_embodied.registry import load_entry_point
from dppo_embodied.robot import EE_KEYS, Robot
from envs.twin import TabletopTwinRobot

pytest.importorskip("mujoco")


@pytest.fixture(scope="module")
def robot() -> Iterator[TabletopTwinRobot]:
    r = load_entry_point("envs.twin:TabletopTwinRobot")(seed=3, image_size=96)
    r.connect()
    yield r
    r.disconnect()


def _go(robot: TabletopTwinRobot, target: np.ndarray, grip: float, n: int = 40) -> dict[str, float]:
    sent: dict[str, float] = {}
    for _ in range(n):
        sent = robot.send_action({"ee.x": target[0], "ee.y": target[1], "ee.z": target[2], "gripper.pos": grip})
    return sent


def test_protocol_and_features() -> None:
    r = TabletopTwinRobot(image_size=(64, 48), cameras=("front", "top"))
    assert isinstance(r, Robot) and not r.is_connected
    feats = r.observation_features
    assert feats["front"] == (48, 64, 3) and feats["top.depth"] == (48, 64)
    assert set(r.action_features) == set(EE_KEYS)
    with r:
        obs = r.get_observation()
        assert obs["front"].shape == (48, 64, 3) and obs["top"].dtype == np.uint8
        assert obs["front.depth"].dtype == np.float32 and set(EE_KEYS) <= set(obs)
    assert not r.is_connected
    r.disconnect()  # twice is fine
    lo, hi = r.profile.workspace  # the twin's own facts, what the bridge reads (dppo_embodied.robot.profile_of)
    with r:
        tcp = np.array([r.get_state()[k] for k in ("ee.x", "ee.y", "ee.z")])
        assert np.all(tcp >= lo) and np.all(tcp <= hi) and r.profile.camera == "sim:front"
        assert np.allclose(tcp, r.profile.home, atol=0.02)  # a fresh scene starts at rest
    with pytest.raises(EnvError, match="connect"):
        r.get_observation()


def test_send_action_is_clipped_per_call(robot: TabletopTwinRobot) -> None:
    robot.reset(3)
    start = np.array([robot.get_observation()[k] for k in ("ee.x", "ee.y", "ee.z")])
    sent = robot.send_action({"ee.x": 1.0, "ee.z": -1.0})
    assert sent["ee.x"] - start[0] == pytest.approx(0.02)
    assert sent["ee.z"] - start[2] == pytest.approx(-0.02)
    assert sent["ee.y"] == pytest.approx(start[1])
    obs = robot.get_observation()
    assert obs["ee.x"] == pytest.approx(sent["ee.x"])


def test_grasp_lift_and_success(robot: TabletopTwinRobot) -> None:
    robot.reset(3)
    state = robot.scene_state()
    name, pos = next(iter(state["objects"].items()))
    p = np.array(pos)
    hh = robot.scene.spec.objects[0].half_height
    _go(robot, np.array([p[0], p[1], 0.15]), 0.0)
    _go(robot, np.array([p[0], p[1], p[2] - 0.4 * hh]), 0.0)
    assert _go(robot, np.array([p[0], p[1], p[2] - 0.4 * hh]), 1.0, n=2)["gripper.pos"] == 1.0
    _go(robot, np.array([p[0], p[1], 0.15]), 1.0)
    assert robot.is_success(f"pick {name}")
    assert robot.scene_state()["held"] == 0
    _go(robot, np.array([p[0], p[1], 0.15]), 0.0, n=30)
    assert not robot.is_success(f"pick {name}")


def test_calibration_matches_observation_depth(robot: TabletopTwinRobot) -> None:
    robot.reset(4)
    cal = robot.calibration()
    obs = robot.get_observation()
    p = np.array(robot.scene_state()["objects"][robot.scene.spec.objects[0].slug])
    x, y, _ = cal.project(p)
    u, v = int(x * 96), int(y * 96)
    q = cal.backproject(x, y, float(obs["front.depth"][v, u]))
    assert np.linalg.norm(q[:2] - p[:2]) < 0.03


def test_reset_is_deterministic_and_tasks(robot: TabletopTwinRobot) -> None:
    robot.reset(7)
    a = robot.get_observation()["front"]
    robot.reset(7)
    assert np.array_equal(a, robot.get_observation()["front"])
    slug = robot.scene.spec.objects[0].slug
    robot.set_task(f"push {slug} at 0.05,0.05")
    assert robot.scene_state()["task"].startswith("push ")
    assert robot.is_success() is False
    with pytest.raises(ConfigError):
        robot.set_task("pick unicorn_horn")


def test_bad_actions_are_typed(robot: TabletopTwinRobot) -> None:
    for bad, word in [({"ee.q": 1.0}, "unknown"), ({"ee.x": float("nan")}, "finite"), ({"ee.x": "left"}, "number")]:
        with pytest.raises(EnvError, match=word):
            robot.send_action(bad)
    with pytest.raises(ConfigError):
        TabletopTwinRobot(cameras=("side",))
    with pytest.raises(ConfigError):
        TabletopTwinRobot(fps=0)
