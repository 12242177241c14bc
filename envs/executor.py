"""Turn a parsed text action into robot motion: point -> depth back-projection -> TCP target -> primitive.

:meth:`Executor.execute` first *validates* an action against the current state (no physics happens for an
invalid one, and the returned reason is the feedback shown to the model), then runs the scripted primitive.
Grasp/place/push primitives end with the arm back at its rest pose behind the table, so the next image shows
the table unobstructed; ``move_to`` and relative moves leave the gripper where it went.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dppo_embodied.actions import (
    PUSH_CM,
    Action,
    DoneAction,
    MoveAction,
    PointAction,
    SkillAction,
    invalid_push_target,
)
from dppo_embodied.prompts import DEFAULT_SKILLS
from envs.control import DIRECTIONS, HOVER, Controller, Outcome
from envs.scene import TabletopScene
from envs.spec import TABLE_HALF, free_position

#: extra tolerance around the table top for pointed points, metres
TABLE_TOL = 0.01


@dataclass
class Result:
    """What happened: ``valid`` (False -> nothing was executed), ``outcome`` text, ``done`` for DoneAction."""

    valid: bool
    message: str
    done: bool = False
    ok: bool = True


class Executor:
    """Executes parsed actions on a scene through a :class:`Controller`.

    Args:
        scene: the loaded scene.
        controller: its controller.
        camera: the camera whose image points refer to.
        skills: the allowed skill names.
    """

    def __init__(self, scene: TabletopScene, controller: Controller, camera: str = "front",
                 skills: tuple[str, ...] = DEFAULT_SKILLS) -> None:
        self.scene = scene
        self.ctl = controller
        self.camera = camera
        self.skills = skills

    # ------------------------------------------------------------------------------------------- 3-D targets
    def locate(self, x: float, y: float) -> np.ndarray | str:
        """World point seen at normalized ``(x, y)`` behind the robot (depth back-projection, table-plane fallback).

        Returns:
            The point, or a reason string when it is not on the table or an object.
        """
        sc = self.scene
        cal = sc.calibration(self.camera)
        depth = sc.render_depth(self.camera, hide_robot=True)
        h, w = depth.shape
        u, v = min(int(x * w), w - 1), min(int(y * h), h - 1)
        z = float(depth[v, u])
        p = cal.backproject(x, y, z) if math.isfinite(z) and 0 < z < 5 else cal.intersect_plane(x, y, 0.0)
        if p is None or abs(p[0]) > TABLE_HALF[0] + TABLE_TOL or abs(p[1]) > TABLE_HALF[1] + TABLE_TOL \
                or p[2] < -TABLE_TOL:
            return f"the point ({x:.2f}, {y:.2f}) is not on the table or an object; point inside the table"
        return p

    def surface_z(self, p: np.ndarray, exclude: int | None = None) -> tuple[float, int | None]:
        """Height of the highest surface under ``p`` (x, y): an object's top or the table (0)."""
        best, who = 0.0, None
        spec = self.scene.spec
        assert spec is not None
        for j in range(self.scene.n_objects):
            if j == exclude or j == self.scene.held:
                continue
            q = self.scene.object_pos(j)
            if math.hypot(q[0] - p[0], q[1] - p[1]) <= spec.objects[j].half_width + 0.01:
                top = self.ctl.top_z(j)
                if top > best:
                    best, who = top, j
        return best, who

    def _object(self, name: str | None) -> int | str:
        spec = self.scene.spec
        assert spec is not None
        slugs = [o.slug for o in spec.objects]
        key = (name or "").strip().lower().replace(" ", "_")
        if key in slugs:
            return slugs.index(key)
        return f"unknown object {name!r}; objects: {', '.join(slugs)}"

    # ----------------------------------------------------------------------------------------------- execute
    def execute(self, action: Action) -> Result:
        """Validate and run ``action``."""
        if isinstance(action, DoneAction):
            return Result(True, "declared the task done", done=True)
        if isinstance(action, PointAction):
            return self._point(action)
        if isinstance(action, MoveAction):
            o = self.ctl.move_relative(action.dx_cm / 100, action.dy_cm / 100, action.dz_cm / 100, action.gripper)
            return Result(True, o.message, ok=o.ok)
        if isinstance(action, SkillAction):
            return self._skill(action)
        return Result(False, f"unsupported action {action!r}")  # pragma: no cover - parser returns only these

    def _finish(self, o: Outcome) -> Result:
        self.ctl.home()
        return Result(True, o.message, ok=o.ok)

    def _point(self, a: PointAction) -> Result:
        sc, ctl = self.scene, self.ctl
        p = self.locate(a.x, a.y)
        if isinstance(p, str):
            return Result(False, p)
        spec = sc.spec
        assert spec is not None
        if a.then == "move_to":
            ctl.transit(p[0], p[1], p[2] + HOVER)
            return Result(True, f"moved above ({a.x:.2f}, {a.y:.2f})")
        if a.then == "grasp":
            if sc.held is not None:
                return self._pick(sc.held)  # refused: the gripper is full
            i = ctl.object_near(p, radius=0.035)
            if i is None:
                return Result(False, f"no object at ({a.x:.2f}, {a.y:.2f}); point at the object to grasp")
            return self._pick(i)
        if a.then == "place":
            if sc.held is None:
                return Result(False, "not holding anything; grasp an object first")
            z, _ = self.surface_z(p)
            return self._finish(ctl.place(p[0], p[1], z))
        # push: sweep from the current TCP position to the point
        if sc.held is not None:
            return Result(False, f"cannot push while holding the {spec.objects[sc.held].name}")
        start = sc.gripper_pos
        if abs(start[0]) > TABLE_HALF[0] + 0.03 or abs(start[1]) > TABLE_HALF[1] + 0.03:
            return Result(False, "the gripper is not above the table; use move_to first to choose where the push "
                                 "starts")
        return self._finish(ctl.push(start[:2], p[:2]))

    def _pick(self, i: int) -> Result:
        """Pick object ``i`` (the point action's grasp and the pick skill), refused while the gripper holds an object
        or while another object lies on it."""
        spec = self.scene.spec
        assert spec is not None
        if self.scene.held is not None:
            return Result(False, f"already holding the {spec.objects[self.scene.held].name}; place it first")
        above = self.ctl.object_above(i)
        if above is not None:
            return Result(False, f"the {spec.objects[above].name} is on top of the {spec.objects[i].name}; "
                                 f"remove it first")
        return self._finish(self.ctl.pick(i))

    def _skill(self, a: SkillAction) -> Result:
        sc, ctl = self.scene, self.ctl
        spec = sc.spec
        assert spec is not None
        if a.name not in self.skills:
            return Result(False, f"unknown skill {a.name!r}; valid: {', '.join(self.skills)}")
        if a.name == "home":
            ctl.home()
            return Result(True, "moved to the rest pose")
        if a.name == "pick":
            i = self._object(a.object)
            if isinstance(i, str):
                return Result(False, i)
            return self._pick(i)
        if a.name == "place":
            if sc.held is None:
                return Result(False, "not holding anything; pick an object first")
            tgt = (a.target or a.object or "").strip().lower().replace(" ", "_")
            if tgt == "target":
                if sc.target is None:
                    return Result(False, "this task has no target disc")
                return self._finish(ctl.place(sc.target[0], sc.target[1], 0.0))
            if tgt == "table":
                placed = [(*sc.object_pos(k)[:2], spec.objects[k].radius) for k in range(sc.n_objects)
                          if k != sc.held]
                spot = free_position(np.random.default_rng(sc.n_objects), spec.objects[sc.held].radius, placed)
                if spot is None:
                    return Result(False, "no free spot on the table")
                return self._finish(ctl.place(spot[0], spot[1], 0.0))
            j = self._object(tgt)
            if isinstance(j, str):
                return Result(False, j + '; or use "target" / "table"')
            q = sc.object_pos(j)
            return self._finish(ctl.place(q[0], q[1], ctl.top_z(j)))
        # push
        i = self._object(a.object)
        if isinstance(i, str):
            return Result(False, i)
        if sc.held is not None:
            return Result(False, f"cannot push while holding the {spec.objects[sc.held].name}")
        tgt = (a.target or "").strip().lower()
        if tgt == "target":
            if sc.target is None:
                return Result(False, "this task has no target disc")
            d = sc.target - sc.object_pos(i)[:2]
            return self._finish(ctl.push_object(i, d, float(np.linalg.norm(d))))
        if tgt not in DIRECTIONS:
            return Result(False, invalid_push_target(a.target))
        return self._finish(ctl.push_object(i, DIRECTIONS[tgt][0], PUSH_CM / 100))
