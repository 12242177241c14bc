"""Robot registry, the thread-safe facade, and the LeRobot end-effector adapter (with fakes: no lerobot here)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

from dppo_embodied.errors import ConfigError, DependencyNotInstalled, UnknownNameError
from dppo_embodied.imports import is_available
from dppo_embodied.registry import Registry
from dppo_embodied.robot import Robot, RobotProfile, profile_of
from robot_bridge.robots import ROBOTS, BridgeRobot, make_robot, robot_names
from robot_bridge.robots.lerobot import LeRobotEEAdapter, lerobot_config, make_so101
from robot_bridge.safety import Safety, SafetyConfig
from tests.bridge.fakes import FakeRobot


def test_registry_lists_and_rejects_unknown() -> None:
    assert {"sim", "so100", "so101", "koch"} <= set(ROBOTS.names())
    assert dict(robot_names())["so101"].startswith("LeRobot")
    assert dict(robot_names())["sim"] == "MuJoCo tabletop twin (needs the sim extra)"
    with pytest.raises(UnknownNameError, match="valid choices"):
        make_robot("r2d2")


def test_the_sim_robot_is_a_plugin_its_provider_declares() -> None:
    from importlib.metadata import entry_points

    eps = {ep.name: ep for ep in entry_points(group="dppo_embodied.robots")}
    assert "sim" in eps  # declared in pyproject.toml by the package that provides it
    assert ROBOTS._specs["sim"] == eps["sim"].value  # the bridge took it from there, not from a module name


def test_an_expected_plugin_that_is_not_installed_names_its_extra() -> None:
    reg: Registry[object] = Registry("robot", plugins="dppo_embodied.no_such_group")
    reg.expect("arm", extra="arm-extra", help="an arm")
    assert "arm" not in reg and reg.names() == []
    with pytest.raises(DependencyNotInstalled, match=r"pip install 'dppo-embodied\[arm-extra\]'"):
        reg.get("arm")
    with pytest.raises(UnknownNameError):
        reg.get("leg")


def test_robots_carry_their_own_profile() -> None:
    assert profile_of(FakeRobot()) == RobotProfile()  # no profile: the defaults
    assert LeRobotEEAdapter.profile.camera == "opencv:0" and LeRobotEEAdapter.profile.workspace is None


@pytest.mark.skipif(is_available("lerobot"), reason="lerobot is installed")
def test_lerobot_robots_need_lerobot() -> None:
    with pytest.raises(DependencyNotInstalled, match="lerobot"):
        make_robot("so101", port="/dev/ttyACM0")
    with pytest.raises(ConfigError, match="unknown LeRobot robot"):
        lerobot_config("r2d2")


def test_make_robot_rejects_unknown_arguments() -> None:
    ROBOTS.register("fake-test", "tests.bridge.fakes:FakeRobot", overwrite=True)
    try:
        assert isinstance(make_robot("fake-test", size=16), FakeRobot)
        with pytest.raises(ConfigError, match="takes no argument"):
            make_robot("fake-test", colour="red")
    finally:
        ROBOTS._specs.pop("fake-test")


def test_bridge_robot_facade() -> None:
    fake = FakeRobot()
    b = BridgeRobot(fake)
    assert isinstance(b, Robot)
    b.connect()
    assert b.is_connected and b.ee_pose().z == pytest.approx(0.15)
    assert set(b.render("front")) >= {"front", "front.depth"}
    assert b.workspace is not None and b.workspace[0].tolist() == [-0.25, -0.2, 0.0]
    assert b.home == (0.0, 0.15, 0.15) and b.calibration("front") is fake.cal
    assert b.holding() is None
    assert b.depth().shape == (64, 64)  # other methods pass through, under the lock
    calls: list[int] = []

    def worker() -> None:
        for _ in range(200):
            b.send_action({"ee.x": 0.0, "ee.y": 0.0, "ee.z": 0.1, "gripper.pos": 0.0})
            calls.append(1)

    ts = [threading.Thread(target=worker) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert len(fake.actions) == 800 == len(calls)
    b.disconnect()
    assert not b.is_connected


class FakeKinematics:
    """Planar toy kinematics: ee = (q0 / 100, q1 / 100, q2 / 100) metres; IK inverts it exactly."""

    def forward_kinematics(self, q: np.ndarray) -> np.ndarray:
        t = np.eye(4)
        t[:3, 3] = np.asarray(q[:3], dtype=float) / 100.0
        return t

    def inverse_kinematics(self, q: np.ndarray, desired: np.ndarray) -> np.ndarray:
        out = np.asarray(q, dtype=float).copy()
        out[:3] = desired[:3, 3] * 100.0
        return out


class FakeLeRobotArm:
    """Joint-space arm like LeRobot's SO-101: '<joint>.pos' in degrees, gripper 0-100."""

    is_connected = True

    @property
    def observation_features(self) -> dict[str, Any]:
        return {"shoulder_pan.pos": float, "front": (8, 8, 3)}

    def __init__(self) -> None:
        self.q = {f"{j}.pos": 0.0 for j in ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex",
                                            "wrist_roll", "gripper")}
        self.q.update({"shoulder_pan.pos": 5.0, "shoulder_lift.pos": 0.0, "elbow_flex.pos": 10.0})
        self.sent: list[dict[str, float]] = []

    def get_observation(self) -> dict[str, Any]:
        return dict(self.q)

    def send_action(self, action: dict[str, float]) -> dict[str, float]:
        self.sent.append(dict(action))
        self.q.update(action)
        return dict(action)


def test_lerobot_adapter_fk_ik_and_joint_guard() -> None:
    arm = FakeLeRobotArm()
    safety = Safety(SafetyConfig(max_joint_step=2.0, joint_limits={"elbow_flex.pos": (-90.0, 12.0)}),
                    control_hz=30.0)
    robot = LeRobotEEAdapter(arm, FakeKinematics(), name="so101", joint_guard=safety.safe_joints)
    s = robot.get_state()
    assert (s["ee.x"], s["ee.y"], s["ee.z"], s["gripper.pos"]) == pytest.approx((0.05, 0.0, 0.10, 0.0))
    out = robot.send_action({"ee.x": 0.5, "ee.y": 0.0, "ee.z": 0.5, "gripper.pos": 1.0})
    sent = arm.sent[-1]
    assert sent["shoulder_pan.pos"] == pytest.approx(7.0)  # 5 -> 50 capped at +2 deg per tick
    assert sent["elbow_flex.pos"] == pytest.approx(12.0)  # 10 -> 50 capped by the limit 12 (and the step)
    assert sent["gripper.pos"] == pytest.approx(2.0)  # 0 -> 100 capped per tick
    assert out["ee.x"] == pytest.approx(0.07) and out["ee.z"] == pytest.approx(0.12)
    assert robot.action_features == {"ee.x": float, "ee.y": float, "ee.z": float, "gripper.pos": float}
    assert "front" in robot.observation_features


@pytest.mark.skipif(is_available("lerobot"), reason="lerobot is installed")
def test_so101_factory_without_lerobot() -> None:
    with pytest.raises(DependencyNotInstalled, match="lerobot"):
        make_so101(port="/dev/null", kinematics=FakeKinematics())
