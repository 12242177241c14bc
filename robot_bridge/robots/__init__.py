"""Robots of the bridge: a registry of names → entry points, and the thread-safe facade the bridge drives.

``so100``, ``so101`` and ``koch`` are LeRobot followers built through LeRobot's own factory when ``lerobot`` is
installed (:mod:`robot_bridge.robots.lerobot`). Other robots are plugins that their provider declares in the
``dppo_embodied.robots`` entry-point group: ``sim``, the MuJoCo twin (same :class:`~dppo_embodied.robot.Robot`
interface), comes with the ``sim`` extra; this torch-free package names no module of it. A robot's static facts
(workspace, home, table height, default camera) are its own ``profile`` (:class:`~dppo_embodied.robot.RobotProfile`).
"""

from __future__ import annotations

import inspect
import logging
import threading
from typing import Any

import numpy as np

from dppo_embodied.errors import ConfigError
from dppo_embodied.geometry import CameraCalibration
from dppo_embodied.registry import Registry
from dppo_embodied.robot import RobotProfile, profile_of
from robot_bridge.pose import EEPose

logger = logging.getLogger(__name__)

ROBOTS: Registry[Any] = Registry("robot", plugins="dppo_embodied.robots")
ROBOTS.expect("sim", extra="sim", help="MuJoCo tabletop twin (needs the sim extra)")
ROBOTS.register("so100", "robot_bridge.robots.lerobot:make_so100", help="LeRobot SO-100 follower (needs lerobot)")
ROBOTS.register("so101", "robot_bridge.robots.lerobot:make_so101", help="LeRobot SO-101 follower (needs lerobot)")
ROBOTS.register("koch", "robot_bridge.robots.lerobot:make_koch", help="LeRobot Koch follower (needs lerobot)")


def robot_names() -> list[tuple[str, str]]:
    """``(name, help)`` rows (``dppo list robots``)."""
    return [(n, ROBOTS.help(n)) for n in ROBOTS.names()]


def make_robot(name: str, **kwargs: Any) -> Any:
    """Build a registered robot with keyword arguments (e.g. ``seed=3`` for ``sim``, ``port=...`` for ``so101``).

    Raises:
        UnknownNameError: the name is not registered (lists the valid ones).
        ConfigError: an argument the robot does not take (lists the ones it takes).
        DependencyNotInstalled: the robot's package is missing (names the extra).
    """
    factory = ROBOTS.get(name)
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # no introspectable signature: let the call decide
        params = None
    if params is not None and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(kwargs) - set(params))
        if unknown:
            raise ConfigError(f"robot {name!r} takes no argument(s) {unknown}; valid: {', '.join(params)}")
    return factory(**kwargs)


class BridgeRobot:
    """Thread-safe facade over a robot: one lock serialises every call (the camera thread renders while the
    executor steps), plus the cheap accessors the bridge needs.

    * :meth:`get_state`: end-effector keys without rendering (the robot's ``get_state()``, else
      ``get_observation()``); never a rounded copy: the per-tick safety caps are computed from it;
    * :meth:`render`: one camera (the twin's renderer, else ``get_observation()``);
    * :attr:`workspace`, :attr:`home`, :meth:`calibration`.

    Args:
        robot: the robot.
        profile: its static facts (default: the robot's own ``profile``).
    """

    def __init__(self, robot: Any, profile: RobotProfile | None = None) -> None:
        self.robot = robot
        self.profile = profile or profile_of(robot)
        self.lock = threading.RLock()
        self.name = getattr(robot, "name", type(robot).__name__)

    # ----------------------------------------------------------------------------------------- protocol
    @property
    def observation_features(self) -> dict[str, Any]:
        """The robot's observation features."""
        return dict(self.robot.observation_features)

    @property
    def action_features(self) -> dict[str, Any]:
        """The robot's action features."""
        return dict(self.robot.action_features)

    @property
    def is_connected(self) -> bool:
        """Whether the robot is connected."""
        return bool(self.robot.is_connected)

    def connect(self, calibrate: bool = True) -> None:
        """Connect the robot."""
        with self.lock:
            self.robot.connect(calibrate=calibrate) if _takes(self.robot.connect, "calibrate") else \
                self.robot.connect()

    def disconnect(self) -> None:
        """Disconnect the robot."""
        with self.lock:
            self.robot.disconnect()

    def get_observation(self) -> dict[str, Any]:
        """Full observation."""
        with self.lock:
            return self.robot.get_observation()

    def send_action(self, action: dict[str, float]) -> dict[str, float]:
        """Send an action; returns what the robot actually applied."""
        with self.lock:
            return self.robot.send_action(action)

    # ------------------------------------------------------------------------------------------ extras
    def get_state(self) -> dict[str, float]:
        """End-effector keys only (no rendering when the robot allows it)."""
        with self.lock:
            fn = getattr(self.robot, "get_state", None)
            if callable(fn):
                return fn()
            return self.robot.get_observation()

    def holding(self) -> bool | None:
        """Whether the gripper holds an object, when the robot can tell (its ``holding()``, or the twin's
        ``scene_state()["held"]``); ``None`` when unknown."""
        with self.lock:
            fn = getattr(self.robot, "holding", None)
            if callable(fn):
                return fn()
            scene_state = getattr(self.robot, "scene_state", None)
            if callable(scene_state):
                return scene_state().get("held") is not None
        return None

    def ee_pose(self) -> EEPose:
        """The current end-effector pose."""
        return EEPose.from_observation(self.get_state())

    def render(self, camera: str) -> dict[str, Any]:
        """``{camera: image, camera + ".depth": depth}`` for one camera (depth when available)."""
        with self.lock:
            fn = getattr(self.robot, "render", None)
            if callable(fn):
                return fn(camera)
            scene = getattr(self.robot, "scene", None)
            if scene is not None and callable(getattr(scene, "render", None)):
                out = {camera: scene.render(camera)}
                if getattr(self.robot, "depth", False) and callable(getattr(scene, "render_depth", None)):
                    out[f"{camera}.depth"] = scene.render_depth(camera)
                return out
            return self.robot.get_observation()

    def release_render(self) -> None:
        """Free the twin's renderer (it is re-created lazily); call it from the thread that rendered."""
        with self.lock:
            try:
                scene = getattr(self.robot, "scene", None)
            except Exception:  # the twin raises when disconnected
                return
            close = getattr(scene, "close", None)
            if callable(close):
                close()

    def calibration(self, camera: str | None = None) -> CameraCalibration | None:
        """The robot's calibration of ``camera`` when it provides one (the twin does), else None."""
        fn = getattr(self.robot, "calibration", None)
        if not callable(fn):
            return None
        with self.lock:
            return fn(camera) if camera is not None and _takes(fn, "camera") else fn()

    @property
    def workspace(self) -> tuple[np.ndarray, np.ndarray] | None:
        """End-effector box ``(low, high)``: the robot's ``workspace`` attribute, else its profile's."""
        ws = getattr(self.robot, "workspace", None) or self.profile.workspace
        if ws is None:
            return None
        lo, hi = (np.asarray(w, dtype=np.float64).reshape(3) for w in ws)
        return lo, hi

    @property
    def home(self) -> tuple[float, float, float] | None:
        """Rest pose, when known."""
        h = getattr(self.robot, "home", None) or self.profile.home
        if h is None:
            return None
        return (float(h[0]), float(h[1]), float(h[2]))

    def __getattr__(self, name: str) -> Any:  # reset(), set_task(), is_success(), scene_state() ...
        attr = getattr(self.robot, name)
        if not callable(attr):
            return attr

        def locked(*a: Any, **kw: Any) -> Any:
            with self.lock:
                return attr(*a, **kw)

        return locked


def _takes(fn: Any, param: str) -> bool:
    try:
        return param in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
