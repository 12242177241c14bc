"""The MuJoCo tabletop: one asset-free MJCF with fixed object slots, reconfigured per :class:`SceneSpec`.

Compiling a model and creating a renderer costs ~15 ms (the first EGL context ~200 ms), so a
:class:`TabletopScene` compiles **one** model with :data:`~envs.spec.MAX_OBJECTS` object slots (each a free body
holding a box, a cylinder and a sphere geom) and :meth:`TabletopScene.load` switches geoms on and off, resizes them
and sets masses in place. Unused slots are parked, invisible, collision-free and gravity-compensated.

Every geom that may collide at run time (the object geoms, the closed-finger ``pusher``) is *compiled* collidable,
so that it has a bounding-volume node and ``mj_setConst`` accepts it however it was toggled since; the scene then
switches them off. :meth:`TabletopScene.load` first restores every model field the scene edits at run time to that
rest state (:data:`_RUNTIME_FIELDS`), so a reset after any history (a grasp, a closed gripper, a push) compiles
the same constants and gives the same frames as a fresh scene.

The end effector is a mocap gripper (palm and two fingers) whose tool centre point (TCP) is the mocap position,
between the finger tips. Grasping is kinematic: :meth:`TabletopScene.attach` makes an object follow the TCP
until :meth:`TabletopScene.detach`; pushing is physical (the closed fingers collide with objects).

The MJCF itself (cameras, gripper, slots, timestep) is :func:`envs.mjcf.build_mjcf`; its constants are re-exported
here. Cameras: ``front`` (oblique, the default) and ``top`` (overhead). Renders are RGB ``(H, W, 3) uint8``, depth
``(H, W) float32`` metres (z-depth along the optical axis) and segmentation ``(H, W) int16`` object indices
(:data:`SEG_TABLE`, :data:`SEG_GRIPPER`, :data:`SEG_NONE` for the rest). Shadows are off by default.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
from typing import Any

import numpy as np

from dppo_embodied.errors import ConfigError, EnvError
from envs._mujoco import mujoco_module
from envs.mjcf import (
    _PARK,
    CAMERAS,
    FINGER_CLOSED,
    FINGER_OPEN,
    GRIPPER_HOME,
    TARGET_RADIUS,
    TIMESTEP,
    build_mjcf,
)
from envs.scene_cameras import SEG_GRIPPER, SEG_NONE, SEG_TABLE, SEG_TARGET, SceneCameras
from envs.spec import COLORS, MAX_OBJECTS, SHAPES, TABLE_HALF, SceneSpec

__all__ = [
    "CAMERAS", "FINGER_CLOSED", "FINGER_OPEN", "GRIPPER_HOME", "SEG_GRIPPER", "SEG_NONE", "SEG_TABLE", "SEG_TARGET",
    "TARGET_RADIUS", "TIMESTEP", "TabletopScene", "build_mjcf",
]

logger = logging.getLogger(__name__)

_GEOM_ORDER = tuple(SHAPES.values())  # box, cylinder, sphere
#: model fields edited at run time (load, grasp, gripper, target, depth rendering); load restores them first
_RUNTIME_FIELDS = ("geom_contype", "geom_conaffinity", "geom_group", "geom_rgba", "geom_size", "geom_rbound",
                   "geom_aabb", "geom_pos", "body_gravcomp", "body_mass", "body_inertia")


class TabletopScene(SceneCameras):
    """A reusable MuJoCo tabletop: load a :class:`SceneSpec`, step physics, move the gripper, render
    (the cameras: :class:`envs.scene_cameras.SceneCameras`).

    Args:
        image_size: square render size in pixels (also ``(width, height)`` as a tuple).
        shadows: render shadows (5-30x slower on CPU rasterizers).

    Raises:
        ConfigError: on a bad image size.
    """

    def __init__(self, image_size: int | tuple[int, int] = 96, shadows: bool = False) -> None:
        w, h = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        if not (16 <= w <= 2048 and 16 <= h <= 2048):
            raise ConfigError(f"image_size must be 16..2048 pixels, got {image_size!r}")
        self.width, self.height = int(w), int(h)
        self.mj = mujoco_module()
        self.model = self.mj.MjModel.from_xml_string(build_mjcf(max(w, h), shadows))
        self.data = self.mj.MjData(self.model)
        self._renderer: Any = None
        self._gl_lock = threading.RLock()
        self._scene_option = self.mj.MjvOption()
        m, name2id = self.model, self.mj.mj_name2id
        g = self.mj.mjtObj.mjOBJ_GEOM
        self._body = [name2id(m, self.mj.mjtObj.mjOBJ_BODY, f"obj{i}") for i in range(MAX_OBJECTS)]
        self._geoms = [[name2id(m, g, f"obj{i}_{t}") for t in _GEOM_ORDER] for i in range(MAX_OBJECTS)]
        self._qadr = [int(m.jnt_qposadr[m.body_jntadr[b]]) for b in self._body]
        self._vadr = [int(m.jnt_dofadr[m.body_jntadr[b]]) for b in self._body]
        self._fingers = [name2id(m, g, "finger_l"), name2id(m, g, "finger_r")]
        self._pusher = name2id(m, g, "pusher")
        self._cam = {n: name2id(m, self.mj.mjtObj.mjOBJ_CAMERA, n) for n in CAMERAS}
        self._geom_label = np.full(m.ngeom, SEG_NONE, dtype=np.int16)
        self._geom_label[name2id(m, g, "table")] = SEG_TABLE
        self._target = name2id(m, g, "target")
        self._geom_label[self._target] = SEG_TARGET
        self.target: np.ndarray | None = None
        for n in ("palm", "wrist", "finger_l", "finger_r", "pusher"):
            self._geom_label[name2id(m, g, n)] = SEG_GRIPPER
        # rest state of the run-time colliders (compiled collidable, see the module docstring), then its snapshot
        m.geom_contype[self._pusher] = m.geom_conaffinity[self._pusher] = 0
        for i in range(MAX_OBJECTS):
            for gid in self._geoms[i]:
                m.geom_contype[gid] = m.geom_conaffinity[gid] = 0
        self._rest = {name: getattr(m, name).copy() for name in _RUNTIME_FIELDS}
        self.spec: SceneSpec | None = None
        self.held: int | None = None
        self._held_offset = np.zeros(3)
        self.gripper_closed = False
        self.time_s = 0.0

    # ------------------------------------------------------------------------------------------- configuration
    @property
    def n_objects(self) -> int:
        """Number of objects of the loaded scene."""
        return 0 if self.spec is None else len(self.spec.objects)

    def load(self, spec: SceneSpec) -> None:
        """Reset the simulation to ``spec`` (objects at rest, gripper home and open, nothing held)."""
        m, d, mj = self.model, self.data, self.mj
        mj.mj_resetData(m, d)
        for name, rest in self._rest.items():  # undo every run-time edit (grasp, closed gripper, target...)
            getattr(m, name)[...] = rest
        self._geom_label[self._geom_label >= 0] = SEG_NONE
        for i in range(MAX_OBJECTS):
            b = self._body[i]
            for gid in self._geoms[i]:
                m.geom_rgba[gid] = (0, 0, 0, 0)
            if i >= len(spec.objects):
                m.body_gravcomp[b] = 1.0
                m.body_mass[b] = 0.1
                m.body_inertia[b] = (1e-4, 1e-4, 1e-4)
                continue
            o = spec.objects[i]
            gid = self._geoms[i][_GEOM_ORDER.index(SHAPES[o.shape])]
            r, hh = o.half_width, o.half_height
            if o.shape == "block":
                size = (r, r, hh)
                inertia = (o.mass * (r * r + hh * hh) / 3,) * 2 + (o.mass * 2 * r * r / 3,)
                aabb = (r, r, hh)
            elif o.shape == "cylinder":
                size = (r, hh, 0.0)
                inertia = (o.mass * (3 * r * r + 4 * hh * hh) / 12,) * 2 + (o.mass * r * r / 2,)
                aabb = (r, r, hh)
            else:
                size = (r, 0.0, 0.0)
                inertia = (0.4 * o.mass * r * r,) * 3
                aabb = (r, r, r)
            m.geom_size[gid] = size
            m.geom_rbound[gid] = float(np.linalg.norm(aabb))
            m.geom_aabb[gid] = (0, 0, 0, *aabb)
            m.geom_rgba[gid] = (*COLORS[o.color], 1.0)
            m.geom_group[gid] = 0
            m.geom_contype[gid] = m.geom_conaffinity[gid] = 3
            m.body_gravcomp[b] = 0.0
            m.body_mass[b] = o.mass
            m.body_inertia[b] = inertia
            self._geom_label[gid] = i
        mj.mj_setConst(m, d)  # mass-dependent constants; it also resets qpos to qpos0
        for i in range(MAX_OBJECTS):
            q = self._qadr[i]
            if i < len(spec.objects):
                o = spec.objects[i]
                c, s = math.cos(o.yaw / 2), math.sin(o.yaw / 2)
                d.qpos[q: q + 7] = (o.x, o.y, spec.center_z(i) + 1e-4, c, 0, 0, s)
            else:
                d.qpos[q: q + 7] = (_PARK[0] + i * 0.2, _PARK[1], _PARK[2], 1, 0, 0, 0)
        d.qvel[:] = 0.0
        self.spec = spec
        self.held = None
        self.time_s = 0.0
        self.set_target(None)
        self.set_gripper(np.array(GRIPPER_HOME), closed=False)
        mj.mj_forward(m, d)

    # ------------------------------------------------------------------------------------------------- physics
    def step(self, n: int = 1) -> None:
        """Advance physics ``n`` timesteps of :data:`TIMESTEP` seconds, carrying any held object."""
        mj, m, d = self.mj, self.model, self.data
        for _ in range(n):
            if self.held is not None:
                self._carry()
            mj.mj_step(m, d)
        if self.held is not None:
            self._carry()
            mj.mj_forward(m, d)
        self.time_s += n * TIMESTEP

    def forward(self) -> None:
        """Recompute positions (after editing state) without advancing time."""
        self.mj.mj_forward(self.model, self.data)

    def settle(self, max_s: float = 1.0, tol: float = 1e-3) -> float:
        """Step until every object is (nearly) at rest or ``max_s`` elapses; returns the simulated seconds."""
        t = 0.0
        while t < max_s:
            self.step(25)
            t += 25 * TIMESTEP
            if self.max_speed() < tol:
                break
        return t

    def max_speed(self) -> float:
        """Largest linear speed (m/s) of any active object."""
        v = [np.linalg.norm(self.data.qvel[a: a + 3]) for a in self._vadr[: self.n_objects]]
        return float(max(v, default=0.0))

    # ------------------------------------------------------------------------------------------------- gripper
    @property
    def gripper_pos(self) -> np.ndarray:
        """TCP position (3,), metres, world frame."""
        return self.data.mocap_pos[0].copy()

    def set_gripper(self, pos: np.ndarray, closed: bool | None = None) -> None:
        """Teleport the TCP to ``pos`` (and open/close the fingers); use :mod:`envs.control` for motion."""
        self.data.mocap_pos[0] = pos
        if closed is not None:
            self.gripper_closed = bool(closed)
            width = FINGER_OPEN
            if closed:
                width = FINGER_CLOSED
                if self.held is not None and self.spec is not None:
                    width = self.spec.objects[self.held].half_width + 0.006
            self.model.geom_pos[self._fingers[0]][0] = -width
            self.model.geom_pos[self._fingers[1]][0] = width
            solid = 2 if closed and self.held is None else 0
            self.model.geom_contype[self._pusher] = self.model.geom_conaffinity[self._pusher] = solid

    def set_target(self, xy: tuple[float, float] | None) -> None:
        """Show the flat target marker centred at ``xy`` on the table (None hides it)."""
        if xy is None:
            self.target = None
            self.model.geom_group[self._target] = 3
            return
        self.target = np.array([float(xy[0]), float(xy[1])])
        self.model.geom_pos[self._target][:2] = self.target
        self.model.geom_group[self._target] = 0

    def attach(self, i: int) -> None:
        """Grasp object ``i``: it follows the TCP (collisions with the gripper off) until :meth:`detach`."""
        self._check_index(i)
        self.held = i
        self._held_offset = self.object_pos(i) - self.gripper_pos
        for gid in self._geoms[i]:
            if self.model.geom_contype[gid]:
                self.model.geom_contype[gid] = self.model.geom_conaffinity[gid] = 1
        self.set_gripper(self.gripper_pos, closed=True)

    def detach(self) -> int | None:
        """Release the held object (it keeps colliding normally); returns its index or None."""
        i, self.held = self.held, None
        if i is not None:
            for gid in self._geoms[i]:
                if self.model.geom_contype[gid]:
                    self.model.geom_contype[gid] = self.model.geom_conaffinity[gid] = 3
            v = self._vadr[i]
            self.data.qvel[v: v + 6] = 0.0
        self.set_gripper(self.gripper_pos, closed=False)
        return i

    def _carry(self) -> None:
        i = self.held
        q, v = self._qadr[i], self._vadr[i]  # type: ignore[index]
        self.data.qpos[q: q + 3] = self.data.mocap_pos[0] + self._held_offset
        self.data.qvel[v: v + 6] = 0.0

    # ------------------------------------------------------------------------------------------------- objects
    def _check_index(self, i: int) -> None:
        if not 0 <= i < self.n_objects:
            raise EnvError(f"object index {i} out of range; the scene has {self.n_objects} objects")

    def object_pos(self, i: int) -> np.ndarray:
        """Centre of object ``i`` (3,), metres, world frame."""
        self._check_index(i)
        return self.data.xpos[self._body[i]].copy()

    def object_quat(self, i: int) -> np.ndarray:
        """Orientation quaternion (w, x, y, z) of object ``i``."""
        self._check_index(i)
        return self.data.xquat[self._body[i]].copy()

    def object_positions(self) -> np.ndarray:
        """``(n_objects, 3)`` centres."""
        return self.data.xpos[self._body[: self.n_objects]].copy()

    def set_object_pose(self, i: int, pos: np.ndarray, quat: np.ndarray | None = None) -> None:
        """Teleport object ``i`` (velocity zeroed); call :meth:`forward` afterwards."""
        self._check_index(i)
        q, v = self._qadr[i], self._vadr[i]
        self.data.qpos[q: q + 3] = pos
        if quat is not None:
            self.data.qpos[q + 3: q + 7] = quat
        self.data.qvel[v: v + 6] = 0.0

    def set_object_velocity(self, i: int, lin: np.ndarray) -> None:
        """Set object ``i``'s linear velocity (m/s), e.g. to poke it."""
        self._check_index(i)
        v = self._vadr[i]
        self.data.qvel[v: v + 3] = lin

    def is_upright(self, i: int, tol_deg: float = 20.0) -> bool:
        """True when object ``i``'s z axis is within ``tol_deg`` of vertical (balls are always upright)."""
        if self.spec is not None and self.spec.objects[i].shape == "ball":
            return True
        zaxis = self.data.xmat[self._body[i]].reshape(3, 3)[:, 2]
        return bool(zaxis[2] >= math.cos(math.radians(tol_deg)))

    def on_table(self, i: int) -> bool:
        """True when object ``i``'s centre is above the table top (not fallen to the floor)."""
        p = self.object_pos(i)
        return bool(p[2] > -0.005 and abs(p[0]) <= TABLE_HALF[0] and abs(p[1]) <= TABLE_HALF[1])

    def contacts(self) -> set[tuple[int, int]]:
        """Pairs ``(i, j)`` (i < j) of objects in contact now; the table is -2 and the gripper -3."""
        out = set()
        for k in range(self.data.ncon):
            c = self.data.contact[k]
            a, b = int(self._geom_label[c.geom1]), int(self._geom_label[c.geom2])
            if a != b and a != SEG_NONE and b != SEG_NONE:
                out.add((min(a, b), max(a, b)))
        return out

    def state(self) -> dict[str, Any]:
        """Compact JSON-ready state: gripper, held object and every object's pose."""
        return {
            "gripper": [round(float(v), 4) for v in self.gripper_pos],
            "gripper_closed": self.gripper_closed,
            "held": self.held,
            "objects": {o.slug: [round(float(v), 4) for v in self.object_pos(i)]
                        for i, o in enumerate(self.spec.objects)} if self.spec else {},
        }

    def close(self) -> None:
        """Free the renderer (GL context), from any thread; safe to call twice."""
        self.close_renderer()

    def __enter__(self) -> TabletopScene:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown
            self.close()
