"""Skill actions → motion primitives: ``pick``, ``place``, ``push``, ``home``, ``open``, ``close``, ``lift``.

The names, arguments and meanings follow :data:`dppo_embodied.prompts.DEFAULT_SKILLS` and the simulated envs
(``place`` target: an object, ``"target"`` (the target disc) or ``"table"``; ``push`` target: ``left``,
``right``, ``away``, ``toward`` or ``"target"``). ``pick``/``place``/``push`` need to know where things are: a
:class:`SkillLibrary` asks a *locator* ``locate(name) -> (x, y, top_z)`` (world metres; ``None`` when unknown).
Robots may provide one (a ``locate(name)`` method, e.g. backed by a perception module); for the simulator twin,
:func:`sim_locator` reads the twin's privileged ``scene_state()`` and task. Without a locator those skills are
refused with a reason that tells the model to point instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from dppo_embodied.actions import PUSH_CM, PUSH_DIRECTIONS, SkillAction, invalid_push_target
from dppo_embodied.parsing import NoAnswer
from robot_bridge.pose import GRIPPER_CLOSED, GRIPPER_OPEN, EEPose, Waypoint

if TYPE_CHECKING:
    from robot_bridge.targets import MotionPlanner

Locator = Callable[[str], "tuple[float, float, float] | None"]
"""``locate(object_name) -> (x, y, top_z)`` metres, world frame; ``None`` when not found."""

SKILLS = ("pick", "place", "push", "home", "open", "close", "lift")
PUSHER_HALF_M = 0.015


def sim_locator(robot: Any, plane_z: float = 0.0) -> Locator | None:
    """A locator over the twin's ``scene_state()`` (object centres) and its task's target disc, or None when the
    robot has no ``scene_state``.

    The top of an object resting on the table is ``2 * centre_z - plane_z``; names match with spaces or
    underscores (``"red block"`` = ``"red_block"``); ``"target"`` is the current task's target disc.
    """
    state_fn = getattr(robot, "scene_state", None)
    if not callable(state_fn):
        return None

    def locate(name: str) -> tuple[float, float, float] | None:
        key = name.strip().lower().replace(" ", "_")
        if key == "target":
            task = getattr(robot, "task", None)
            tgt = getattr(task, "target", None)
            return (float(tgt[0]), float(tgt[1]), plane_z) if tgt is not None else None
        objects = (state_fn() or {}).get("objects") or {}
        pos = objects.get(key)
        if pos is None:
            return None
        x, y, z = (float(v) for v in pos[:3])
        return x, y, 2.0 * z - plane_z

    return locate


class SkillLibrary:
    """Named skills planned as waypoints with the :class:`~robot_bridge.targets.MotionPlanner` primitives.

    Args:
        locator: where objects are (``None``: pick/place refused).
        home: the rest pose ``(x, y, z)`` for ``home`` (``None``: refused).
        lift_m: how far ``lift`` raises the gripper.
    """

    def __init__(self, locator: Locator | None = None, home: tuple[float, float, float] | None = None,
                 lift_m: float = 0.08) -> None:
        self.locator, self.home, self.lift_m = locator, home, lift_m

    @property
    def names(self) -> tuple[str, ...]:
        """Skill names available (the allowlist given to the parser)."""
        need_locator = {"pick", "place", "push"}
        return tuple(s for s in SKILLS if (s not in need_locator or self.locator is not None)
                     and (s != "home" or self.home is not None))

    def _where(self, name: str | None, what: str) -> np.ndarray | NoAnswer:
        if not name:
            return NoAnswer(f"skill {what!r} needs an object name, e.g. "
                            f'{{"action": {{"type": "skill", "name": "{what}", "object": "red_block"}}}}')
        if self.locator is None:
            return NoAnswer(f"skill {what!r} needs object positions, which this robot cannot provide; point instead")
        loc = self.locator(name)
        if loc is None:
            return NoAnswer(f"no object called {name!r} is visible")
        return np.asarray(loc, dtype=np.float64)

    def plan(self, action: SkillAction, state: EEPose, t_obs: float, decision: int,
             motion: MotionPlanner) -> list[Waypoint] | NoAnswer:
        """Waypoints of a skill, or :class:`NoAnswer` with a reason for the model."""
        name = action.name
        if name not in self.names:
            return NoAnswer(f"unknown skill {name!r}; valid: {', '.join(self.names)}")
        dwell = motion.config.grip_dwell_s
        if name == "open":
            seq = [(state.with_gripper(GRIPPER_OPEN), "open", None, dwell)]
        elif name == "close":
            seq = [(state.with_gripper(GRIPPER_CLOSED), "close", None, dwell)]
        elif name == "lift":
            seq = [(state.with_xyz(state.xyz + np.array([0.0, 0.0, self.lift_m])), "lift", None, 0.0)]
        elif name == "home":
            assert self.home is not None
            up = state.with_xyz((state.x, state.y, max(state.z, motion.config.safe_z_m)))
            seq = [(up, "lift", None, 0.0), (state.with_xyz(self.home), "home", None, 0.0)]
        elif name == "pick":
            p = self._where(action.object, "pick")
            if isinstance(p, NoAnswer):
                return p
            if state.gripper >= 0.5:
                return NoAnswer("cannot pick: the gripper is closed (already holding something?)")
            seq = motion.grasp_at(p, state)
        elif name == "push":
            seq_or = self._push(action, state, motion)
            if isinstance(seq_or, NoAnswer):
                return seq_or
            seq = seq_or
        else:  # place on a named object, the target disc, or the table where the gripper is
            if state.gripper < 0.5:
                return NoAnswer("cannot place: the gripper holds nothing")
            target = (action.target or action.object or "").strip().lower()
            if target in ("", "table"):
                p = np.array([state.x, state.y, motion.config.plane_z])
            else:
                p = self._where(target, "place")
                if isinstance(p, NoAnswer):
                    return p
            seq = motion.place_at(p, state)
        return motion.timed(seq, state, t_obs, decision)

    def _push(self, action: SkillAction, state: EEPose, motion: MotionPlanner) -> list[Any] | NoAnswer:
        """Push the object ``PUSH_CM`` centimetres in a direction, or onto the target disc (like ``envs.control``)."""
        top = self._where(action.object, "push")
        if isinstance(top, NoAnswer):
            return top
        tgt = (action.target or "").strip().lower()
        plane = motion.config.plane_z
        half = max(0.01, (float(top[2]) - plane) / 2.0)  # half height ~ half width for blocks and balls
        centre = top[:2]
        if tgt == "target":
            goal = self._where("target", "push")
            if isinstance(goal, NoAnswer):
                return NoAnswer("this task has no target disc")
            d = goal[:2] - centre
            distance = float(np.linalg.norm(d))
            if distance < 1e-3:
                return NoAnswer("the object is already on the target")
            d = d / distance
        elif tgt in PUSH_DIRECTIONS:
            d, distance = np.asarray(PUSH_DIRECTIONS[tgt], dtype=np.float64), PUSH_CM / 100
        else:
            return NoAnswer(invalid_push_target(action.target))
        start = centre - d * (half * 1.42 + PUSHER_HALF_M + 0.02)
        end = centre + d * (distance - half - PUSHER_HALF_M)
        return motion.push_path(start, end, state)
