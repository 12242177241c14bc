"""LeRobot robots (SO-100, SO-101, Koch) through LeRobot's own config classes and ``make_robot_from_config``.

LeRobot arms are joint-space robots (``"<motor>.pos"`` in degrees, gripper 0-100). The bridge speaks end-effector
poses, so :class:`LeRobotEEAdapter` converts with forward/inverse kinematics from the arm's URDF (LeRobot's
``RobotKinematics``, placo-based: ``pip install 'lerobot[kinematics]'``):

* observation: joints → FK → ``ee.x/ee.y/ee.z`` (metres, robot base frame) and ``gripper.pos`` in [0, 1];
* action: ``ee.*`` target → IK from the present joints → joint goals, clamped by the bridge's joint limits and
  per-tick joint cap (``safety.max_joint_step``, LeRobot's ``max_relative_target`` idea, on by default here) →
  ``robot.send_action`` (which returns what the motors were actually sent; it is logged).

``lerobot`` is optional: without it every factory raises :class:`DependencyNotInstalled` naming the install.
LeRobot pins its own torch and huggingface-hub, so install it in the robot computer's environment, not in the
training one (``docs/bridge.md``).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from dppo_embodied.errors import ConfigError, DependencyNotInstalled
from dppo_embodied.imports import require
from dppo_embodied.robot import EE_KEYS, RobotProfile

logger = logging.getLogger(__name__)

#: our name -> (LeRobot robot type, candidate modules holding its config class, config class name)
LEROBOT_TYPES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "so100": ("so100_follower", ("lerobot.robots.so100_follower", "lerobot.robots.so_follower"),
              "SO100FollowerConfig"),
    "so101": ("so101_follower", ("lerobot.robots.so101_follower", "lerobot.robots.so_follower"),
              "SO101FollowerConfig"),
    "koch": ("koch_follower", ("lerobot.robots.koch_follower",), "KochFollowerConfig"),
}
ARM_JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll")
GRIPPER_JOINT = "gripper"


def _require_lerobot() -> Any:
    try:
        return require("lerobot", extra="lerobot")
    except DependencyNotInstalled as e:
        raise DependencyNotInstalled(
            "lerobot", "lerobot",
            detail="LeRobot itself installs with `pip install 'lerobot[feetech]'` (SO-100/101) or "
                   "`'lerobot[dynamixel]'` (Koch), plus `'lerobot[kinematics]'` for end-effector control; it pins "
                   "torch<2.11, so use the robot computer's own environment") from e


def lerobot_config(kind: str, **kwargs: Any) -> Any:
    """LeRobot's config object of robot ``kind`` (``so100``/``so101``/``koch``), e.g. ``port``, ``id``, ``cameras``.

    Raises:
        DependencyNotInstalled: lerobot is missing.
        ConfigError: unknown kind, or this LeRobot version lacks the config class.
    """
    if kind not in LEROBOT_TYPES:
        raise ConfigError(f"unknown LeRobot robot {kind!r}; valid: {', '.join(LEROBOT_TYPES)}")
    _require_lerobot()
    _type, modules, cls_name = LEROBOT_TYPES[kind]
    for mod in modules:
        try:
            cls = getattr(importlib.import_module(mod), cls_name, None)
        except ImportError:
            continue
        if cls is not None:
            return cls(**kwargs)
    raise ConfigError(f"this lerobot version has no {cls_name} (looked in {', '.join(modules)}); use lerobot >= 0.4")


def make_lerobot_robot(kind: str, urdf: str | None = None, ee_frame: str = "gripper_frame_link",
                       kinematics: Any = None, **config: Any) -> LeRobotEEAdapter:
    """Build a LeRobot follower through ``make_robot_from_config`` and wrap it for end-effector control.

    Args:
        kind: ``so100``, ``so101`` or ``koch``.
        urdf: path of the arm's URDF (needed for end-effector control).
        ee_frame: URDF frame of the tool centre point.
        kinematics: a ready kinematics object (``forward_kinematics``/``inverse_kinematics``), overrides ``urdf``.
        **config: fields of LeRobot's config (``port``, ``id``, ``cameras``, ``max_relative_target``...).
    """
    cfg = lerobot_config(kind, **config)
    try:
        from lerobot.robots.utils import make_robot_from_config  # type: ignore[import-not-found]
    except ImportError:  # pragma: no cover - older layouts
        from lerobot.robots import make_robot_from_config  # type: ignore[import-not-found,no-redef]
    robot = make_robot_from_config(cfg)
    if kinematics is None:
        if not urdf:
            raise ConfigError(f"end-effector control of {kind} needs its URDF: --robot-arg urdf=/path/to/{kind}.urdf "
                              "(e.g. from TheRobotStudio/SO-ARM100) and `pip install 'lerobot[kinematics]'`")
        try:
            from lerobot.model.kinematics import RobotKinematics  # type: ignore[import-not-found]
        except ImportError as e:
            raise DependencyNotInstalled("lerobot[kinematics]", "lerobot",
                                         detail="pip install 'lerobot[kinematics]' (placo)") from e
        kinematics = RobotKinematics(urdf_path=urdf, target_frame_name=ee_frame, joint_names=list(ARM_JOINTS))
    return LeRobotEEAdapter(robot, kinematics, name=kind)


def make_so100(**kw: Any) -> LeRobotEEAdapter:
    """SO-100 follower (``port``, ``id``, ``urdf``, ``cameras``...)."""
    return make_lerobot_robot("so100", **kw)


def make_so101(**kw: Any) -> LeRobotEEAdapter:
    """SO-101 follower (``port``, ``id``, ``urdf``, ``cameras``...)."""
    return make_lerobot_robot("so101", **kw)


def make_koch(**kw: Any) -> LeRobotEEAdapter:
    """Koch follower (``port``, ``id``, ``urdf``, ``cameras``...)."""
    return make_lerobot_robot("koch", **kw)


class LeRobotEEAdapter:
    """End-effector interface over a LeRobot joint-space arm (keys ``<joint>.pos`` in degrees, gripper 0-100).

    Its :attr:`profile` names the default camera (``opencv:0``); the workspace box is the user's to set
    (``safety.workspace_min/max``).

    Args:
        robot: a LeRobot ``Robot``.
        kinematics: object with ``forward_kinematics(joints_deg) -> 4x4`` and
            ``inverse_kinematics(current_joints_deg, desired_4x4) -> joints_deg`` (LeRobot's ``RobotKinematics``).
        name: robot name.
        joints: arm joint names, base to wrist.
        gripper: gripper joint name (its ``.pos`` is 0 = open .. 100 = closed).
        joint_guard: ``guard(goal, present) -> safe goal`` applied to joint targets (the bridge passes
            :meth:`robot_bridge.safety.Safety.safe_joints`).
    """

    profile = RobotProfile(camera="opencv:0")

    def __init__(self, robot: Any, kinematics: Any, name: str = "lerobot", joints: tuple[str, ...] = ARM_JOINTS,
                 gripper: str = GRIPPER_JOINT,
                 joint_guard: Callable[[dict[str, float], dict[str, float]], dict[str, float]] | None = None) -> None:
        self.robot, self.kin, self.name = robot, kinematics, name
        self.joints, self.gripper = tuple(joints), gripper
        self.joint_guard = joint_guard
        self.last_sent: dict[str, float] | None = None

    @property
    def observation_features(self) -> dict[str, Any]:
        """End-effector keys plus the robot's cameras (and its joints, for recording)."""
        feats = dict.fromkeys(EE_KEYS, float)
        feats.update(self.robot.observation_features)
        return feats

    @property
    def action_features(self) -> dict[str, Any]:
        """End-effector keys."""
        return dict.fromkeys(EE_KEYS, float)

    @property
    def is_connected(self) -> bool:
        """Whether the arm is connected."""
        return bool(self.robot.is_connected)

    def connect(self, calibrate: bool = True) -> None:
        """Connect the arm (LeRobot calibrates on first use)."""
        self.robot.connect(calibrate=calibrate)

    def disconnect(self) -> None:
        """Disconnect (LeRobot disables torque by default)."""
        if self.robot.is_connected:
            self.robot.disconnect()

    def _joints(self, obs: dict[str, Any]) -> np.ndarray:
        try:
            return np.array([float(obs[f"{j}.pos"]) for j in self.joints])
        except KeyError as e:
            raise ConfigError(f"{self.name}: observation lacks joint {e}; joints are {self.joints}") from e

    def _ee(self, obs: dict[str, Any]) -> dict[str, float]:
        t = np.asarray(self.kin.forward_kinematics(self._joints(obs)))
        g = float(obs.get(f"{self.gripper}.pos", 0.0)) / 100.0
        return {"ee.x": float(t[0, 3]), "ee.y": float(t[1, 3]), "ee.z": float(t[2, 3]),
                "gripper.pos": min(1.0, max(0.0, g))}

    def get_observation(self) -> dict[str, Any]:
        """The arm's observation plus the end-effector keys."""
        obs = dict(self.robot.get_observation())
        obs.update(self._ee(obs))
        return obs

    def get_state(self) -> dict[str, float]:
        """End-effector keys (reads the motors; cameras are read by the arm too, as LeRobot does)."""
        return self._ee(self.robot.get_observation())

    def send_action(self, action: dict[str, float]) -> dict[str, float]:
        """IK to joint goals, guard them, send; returns the end-effector pose of what was actually sent."""
        obs = self.robot.get_observation()
        q = self._joints(obs)
        current = np.asarray(self.kin.forward_kinematics(q), dtype=np.float64)
        desired = current.copy()
        desired[:3, 3] = [float(action.get(k, current[i, 3])) for i, k in enumerate(EE_KEYS[:3])]
        q_goal = np.asarray(self.kin.inverse_kinematics(q, desired), dtype=np.float64)[: len(self.joints)]
        goal = {f"{j}.pos": float(v) for j, v in zip(self.joints, q_goal, strict=False)}
        present = {f"{j}.pos": float(v) for j, v in zip(self.joints, q, strict=True)}
        g_key = f"{self.gripper}.pos"
        if "gripper.pos" in action:
            goal[g_key] = 100.0 * min(1.0, max(0.0, float(action["gripper.pos"])))
            present[g_key] = float(obs.get(g_key, goal[g_key]))
        if self.joint_guard is not None:
            goal = self.joint_guard(goal, present)
        sent = self.robot.send_action(goal)
        self.last_sent = dict(sent)
        merged = {**present, **{k: float(v) for k, v in sent.items()}}
        return self._ee(merged)
