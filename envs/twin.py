"""``TabletopTwinRobot``: the MuJoCo tabletop behind the :class:`dppo_embodied.robot.Robot` protocol.

It is the ``sim`` plugin of the ``dppo_embodied.robots`` entry-point group (declared in pyproject.toml), which
``dppo bridge --robot sim`` uses to rehearse a deployment without hardware; its :attr:`~TabletopTwinRobot.profile`
carries the workspace, rest pose, table height and camera the bridge needs. It is an end-effector robot:

* action keys ``ee.x``, ``ee.y``, ``ee.z`` (absolute TCP target, metres, world frame) and ``gripper.pos``
  (0 = open, 1 = closed; >= 0.5 closes and grasps an object between the fingers, < 0.5 opens and releases);
  missing keys hold their current value;
* every :meth:`send_action` moves the TCP at most ``max_relative_target`` metres per axis toward the target
  (clipped to the workspace box), simulates one control period of ``1 / fps`` seconds and returns the action it
  actually applied;
* observations: the same keys with measured values (exact; also :meth:`get_state`, without rendering),
  ``<camera>`` RGB ``(H, W, 3) uint8`` and ``<camera>.depth`` ``(H, W) float32`` metres for each camera
  (``front`` by default).

World frame: table top at z = 0, x right and y away from the ``front`` camera, z up. Example::

    robot = TabletopTwinRobot(seed=3)
    with robot:
        obs = robot.get_observation()
        sent = robot.send_action({"ee.x": 0.0, "ee.y": 0.0, "ee.z": 0.10, "gripper.pos": 0.0})
        cal = robot.calibration()                 # CameraCalibration of "front"
        robot.is_success("pick red_block")
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from dppo_embodied.errors import ConfigError, EnvError
from dppo_embodied.geometry import CameraCalibration
from dppo_embodied.robot import EE_KEYS, RobotProfile
from envs.control import GRASP_RADIUS, WORKSPACE_HI, WORKSPACE_LO
from envs.scene import CAMERAS, GRIPPER_HOME, TIMESTEP, TabletopScene
from envs.spec import sample_scene
from envs.tasks import Task, evaluate, parse_task

logger = logging.getLogger(__name__)


class TabletopTwinRobot:
    """Simulated end-effector robot over a seeded tabletop scene (LeRobot-compatible ``Robot``).

    Args:
        seed: scene seed used by :meth:`connect` (and :meth:`reset` without a seed).
        image_size: camera image size in pixels (square int or ``(width, height)``).
        cameras: camera names to render (``"front"``, ``"top"``).
        fps: control rate; each :meth:`send_action` simulates ``1 / fps`` seconds.
        max_relative_target: per-axis TCP step limit per call, metres (None = no limit besides the workspace).
        n_objects: objects per scene (count or inclusive range).
        depth: include ``<camera>.depth`` in observations.
    """

    name = "tabletop_twin"
    #: what the bridge needs before moving it: the TCP box of the controller, the rest pose, the table top (z = 0)
    #: and the robot's own ``front`` camera.
    profile = RobotProfile(workspace=(tuple(float(v) for v in WORKSPACE_LO), tuple(float(v) for v in WORKSPACE_HI)),
                           home=GRIPPER_HOME, plane_z=0.0, camera="sim:front")

    def __init__(self, seed: int = 0, image_size: int | tuple[int, int] = 224,
                 cameras: tuple[str, ...] = ("front",), fps: float = 30.0, max_relative_target: float | None = 0.02,
                 n_objects: int | tuple[int, int] = (3, 5), depth: bool = True) -> None:
        for c in cameras:
            if c not in CAMERAS:
                raise ConfigError(f"unknown camera {c!r}; valid: {', '.join(CAMERAS)}")
        if not cameras:
            raise ConfigError("cameras must name at least one camera")
        if fps <= 0 or not math.isfinite(fps):
            raise ConfigError(f"fps must be a positive number, got {fps!r}")
        if max_relative_target is not None and not max_relative_target > 0:
            raise ConfigError(f"max_relative_target must be > 0 or None, got {max_relative_target!r}")
        self.seed = int(seed)
        self.image_size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        self.cameras = tuple(cameras)
        self.fps = float(fps)
        self.max_relative_target = max_relative_target
        self.n_objects = n_objects
        self.depth = depth
        self._scene: TabletopScene | None = None
        self._substeps = max(1, round(1.0 / (self.fps * TIMESTEP)))
        self.task: Task | None = None

    # ------------------------------------------------------------------------------------------------ protocol
    @property
    def observation_features(self) -> dict[str, Any]:
        """``ee.*``/``gripper.pos`` -> float; each camera -> ``(H, W, 3)``; ``<camera>.depth`` -> ``(H, W)``."""
        w, h = self.image_size
        feats: dict[str, Any] = dict.fromkeys(EE_KEYS, float)
        for c in self.cameras:
            feats[c] = (h, w, 3)
            if self.depth:
                feats[f"{c}.depth"] = (h, w)
        return feats

    @property
    def action_features(self) -> dict[str, Any]:
        """``ee.x``, ``ee.y``, ``ee.z`` (metres) and ``gripper.pos`` (0 open .. 1 closed) -> float."""
        return dict.fromkeys(EE_KEYS, float)

    @property
    def is_connected(self) -> bool:
        """True between :meth:`connect` and :meth:`disconnect`."""
        return self._scene is not None

    @property
    def is_calibrated(self) -> bool:
        """The simulator's cameras are always calibrated."""
        return True

    def connect(self, calibrate: bool = True) -> None:
        """Build the scene (seed ``self.seed``); calling it twice is harmless."""
        if self._scene is None:
            self._scene = TabletopScene(self.image_size)
            self.reset(self.seed)

    def calibrate(self) -> None:
        """Nothing to do in simulation."""

    def configure(self) -> None:
        """Nothing to do in simulation."""

    def disconnect(self) -> None:
        """Free the renderer; safe to call twice."""
        if self._scene is not None:
            self._scene.close()
            self._scene = None

    def __enter__(self) -> TabletopTwinRobot:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    @property
    def scene(self) -> TabletopScene:
        """The underlying :class:`TabletopScene` (raises EnvError before :meth:`connect`)."""
        if self._scene is None:
            raise EnvError("TabletopTwinRobot is not connected; call connect() (or use it as a context manager)")
        return self._scene

    def get_observation(self) -> dict[str, Any]:
        """Flat observation following :attr:`observation_features`."""
        sc = self.scene
        obs: dict[str, Any] = self.get_state()
        for c in self.cameras:
            obs[c] = sc.render(c)
            if self.depth:
                obs[f"{c}.depth"] = sc.render_depth(c)
        return obs

    def get_state(self) -> dict[str, float]:
        """The ``ee.*``/``gripper.pos`` keys of :meth:`get_observation`, exact (unrounded) and without rendering."""
        sc = self.scene
        p = sc.gripper_pos
        return {"ee.x": float(p[0]), "ee.y": float(p[1]), "ee.z": float(p[2]),
                "gripper.pos": 1.0 if sc.gripper_closed else 0.0}

    def send_action(self, action: dict[str, float]) -> dict[str, float]:
        """Move toward the target with per-call limits, simulate ``1 / fps`` s; return the action applied.

        Raises:
            EnvError: for non-numeric or non-finite values, or unknown keys (naming the valid ones).
        """
        sc = self.scene
        unknown = sorted(set(action) - set(EE_KEYS))
        if unknown:
            raise EnvError(f"unknown action key(s) {unknown}; valid: {', '.join(EE_KEYS)}")
        cur = sc.gripper_pos
        target = cur.copy()
        for k, key in enumerate(("ee.x", "ee.y", "ee.z")):
            if key in action:
                target[k] = _finite(action[key], key)
        if self.max_relative_target is not None:
            target = cur + np.clip(target - cur, -self.max_relative_target, self.max_relative_target)
        target = np.clip(target, WORKSPACE_LO, WORKSPACE_HI)
        grip = _finite(action["gripper.pos"], "gripper.pos") if "gripper.pos" in action else (
            1.0 if sc.gripper_closed else 0.0)
        close = grip >= 0.5
        sc.data.mocap_pos[0] = target
        if close and not sc.gripper_closed:
            self._close()
        elif not close and sc.gripper_closed:
            sc.detach()
        sc.step(self._substeps)
        return {"ee.x": float(target[0]), "ee.y": float(target[1]), "ee.z": float(target[2]),
                "gripper.pos": 1.0 if sc.gripper_closed else 0.0}

    def _close(self) -> None:
        sc = self.scene
        tcp = sc.gripper_pos
        assert sc.spec is not None
        for j in range(sc.n_objects):
            p = sc.object_pos(j)
            o = sc.spec.objects[j]
            if math.hypot(*(p[:2] - tcp[:2])) <= GRASP_RADIUS and -0.01 <= p[2] - tcp[2] <= o.half_height + 0.03:
                sc.attach(j)
                logger.debug("twin grasped %s", o.slug)
                return
        sc.set_gripper(tcp, closed=True)

    # ------------------------------------------------------------------------------------------------- extras
    def reset(self, seed: int | None = None, task: str | Task | None = None) -> None:
        """Load a new seeded scene (same seed -> same scene); optionally set the task and show its target."""
        sc = self.scene
        s = self.seed if seed is None else int(seed)
        sc.load(sample_scene(s, self.n_objects))
        self.task = None
        if task is not None:
            self.set_task(task)

    def set_task(self, task: str | Task) -> Task:
        """Set the current task (shows the target disc for push/place)."""
        self.task = parse_task(task)
        self.scene.spec.index(self.task.objects[0])  # type: ignore[union-attr]  # raises on unknown objects
        self.scene.set_target(self.task.target)
        self.scene.forward()
        return self.task

    def calibration(self, camera: str | None = None) -> CameraCalibration:
        """:class:`CameraCalibration` of ``camera`` (default: the first configured camera)."""
        return self.scene.calibration(camera or self.cameras[0])

    def scene_state(self) -> dict[str, Any]:
        """JSON-ready state: gripper, held object, object positions and slugs, the task."""
        st = self.scene.state()
        st["task"] = self.task.to_text() if self.task else None
        st["time_s"] = round(self.scene.time_s, 4)
        return st

    def is_success(self, task: str | Task | None = None) -> bool:
        """Whether ``task`` (default: the current task) is achieved in the current state."""
        t = parse_task(task) if task is not None else self.task
        if t is None:
            raise EnvError("no task given and none set; pass e.g. 'pick red_block'")
        return evaluate(t, self.scene)[0]


def _finite(v: Any, key: str) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError) as e:
        raise EnvError(f"action {key} must be a number, got {v!r}") from e
    if not math.isfinite(f):
        raise EnvError(f"action {key} must be finite, got {v!r}")
    return f
