"""Scripted experts that solve every tabletop task through the same text interface a model uses.

:func:`expert_action` reads the simulator state of a :class:`~envs.tabletop.TabletopEnv` and returns the JSON text
of the next action — mostly ``point`` actions computed by projecting world points into the camera image, so the
expert exercises the whole point -> depth -> 3-D pipeline. Its episodes are SFT demonstrations and the upper bound
of closed-loop evaluation.
"""

from __future__ import annotations

import json
import math
from itertools import pairwise
from typing import Any

import numpy as np

from dppo_embodied.actions import Action, DoneAction, PointAction, SkillAction, action_to_json
from dppo_embodied.errors import EnvError
from envs.control import PUSHER_HALF
from envs.scene import TabletopScene
from envs.spec import TABLE_HALF, free_position
from envs.tasks import TARGET_TOL, Task, evaluate

#: a push is re-aimed when the object is farther than this from the target, metres
_PUSH_TOL = 0.6 * TARGET_TOL


def _env(env: Any) -> Any:
    inner = getattr(env, "unwrapped", env)
    if not hasattr(inner, "task") or not hasattr(inner, "scene"):
        raise EnvError(f"expert_action needs a dppo tabletop env, got {type(inner).__name__}")
    if inner.task is None:
        raise EnvError("call env.reset() before asking the expert")
    return inner


def _point(sc: TabletopScene, camera: str, p: np.ndarray, then: str) -> PointAction:
    x, y = sc.project(p, camera)
    return PointAction(round(float(np.clip(x, 0.0, 1.0)), 3), round(float(np.clip(y, 0.0, 1.0)), 3), then)


def _on_object(sc: TabletopScene, camera: str, i: int, then: str) -> Action:
    """Point at object ``i``'s top centre, or at its visible pixel nearest to it when something hides the top;
    fall back to the named skill when the object is not visible at all."""
    x, y = sc.project(_top(sc, i), camera)
    seg = sc.render_segmentation(camera)
    h, w = seg.shape
    u, v = min(max(int(x * w), 0), w - 1), min(max(int(y * h), 0), h - 1)
    if seg[v, u] == i:
        return _point(sc, camera, _top(sc, i), then)
    vs, us = np.nonzero(seg == i)
    assert sc.spec is not None
    if len(us) == 0:
        slug = sc.spec.objects[i].slug
        return SkillAction("pick", object=slug) if then == "grasp" else SkillAction("place", target=slug)
    k = int(np.argmin((us - u) ** 2 + (vs - v) ** 2))
    return PointAction(round((us[k] + 0.5) / w, 3), round((vs[k] + 0.5) / h, 3), then)


def _top(sc: TabletopScene, i: int) -> np.ndarray:
    assert sc.spec is not None
    return sc.object_pos(i) + np.array([0.0, 0.0, sc.spec.objects[i].half_height])


def _above(sc: TabletopScene, i: int) -> int | None:
    assert sc.spec is not None
    top = _top(sc, i)
    for j in range(sc.n_objects):
        if j in (i, sc.held):
            continue
        pj = sc.object_pos(j)
        if abs(pj[2] - sc.spec.objects[j].half_height - top[2]) < 0.015 and \
                math.hypot(*(pj[:2] - top[:2])) < sc.spec.objects[i].radius:
            return j
    return None


def _table_spot(sc: TabletopScene, i: int) -> np.ndarray | None:
    assert sc.spec is not None
    placed = [(*sc.object_pos(k)[:2], sc.spec.objects[k].radius) for k in range(sc.n_objects) if k != i]
    if sc.target is not None:
        placed.append((float(sc.target[0]), float(sc.target[1]), 0.04))
    rng = np.random.default_rng(i)
    for _ in range(20):  # a spot the camera sees well
        spot = free_position(rng, sc.spec.objects[i].radius, placed, margin=0.05)
        if spot is None:
            return None
        p = np.array([spot[0], spot[1], 0.0])
        x, y = sc.project(p)
        if 0.05 <= x <= 0.95 and 0.05 <= y <= 0.95:
            return p
    return None


def _grasp_or_clear(sc: TabletopScene, camera: str, i: int) -> Action:
    """Grasp object ``i``, or first whatever rests on it."""
    blocker = _above(sc, i)
    return _on_object(sc, camera, blocker if blocker is not None else i, "grasp")


def _put_away(sc: TabletopScene, camera: str) -> Action:
    """Put the held object down on a free spot of the table."""
    assert sc.held is not None and sc.spec is not None
    spot = _table_spot(sc, sc.held)
    if spot is None:
        return SkillAction("place", target="table")
    return _point(sc, camera, spot, "place")


def _push(sc: TabletopScene, camera: str, task: Task) -> Action:
    assert sc.spec is not None and task.target is not None
    i = sc.spec.index(task.objects[0])
    o = sc.spec.objects[i]
    p = sc.object_pos(i)[:2]
    t = np.asarray(task.target, dtype=float)
    d = t - p
    dist = float(np.linalg.norm(d))
    if dist <= _PUSH_TOL:
        return DoneAction()
    d /= dist
    pusher = PUSHER_HALF[1]
    contact = o.half_width * (abs(d[0]) + abs(d[1]) if o.shape == "block" else 1.0)
    start = p - d * (o.radius + pusher + 0.02)
    end = t - d * (contact + pusher)
    if abs(start[0]) > TABLE_HALF[0] - 0.02 or abs(start[1]) > TABLE_HALF[1] - 0.02:
        return SkillAction("push", object=o.slug, target="target")
    tcp = sc.gripper_pos
    if tcp[2] < 0.12:  # hovering after a move_to
        if math.hypot(*(tcp[:2] - start)) < 0.02:
            return _point(sc, camera, np.array([end[0], end[1], 0.0]), "push")
        return SkillAction("push", object=o.slug, target="target")  # the start point was occluded
    return _point(sc, camera, np.array([start[0], start[1], 0.0]), "move_to")


def plan_action(sc: TabletopScene, task: Task, camera: str = "front") -> Action:
    """The expert's next :class:`~dppo_embodied.actions.Action` for ``task`` in the scene's current state."""
    spec = sc.spec
    if spec is None:
        raise EnvError("no scene loaded")
    if evaluate(task, sc)[0]:
        return DoneAction()
    idx = [spec.index(s) for s in task.objects]
    if task.kind == "push":
        if sc.held is not None:
            return _put_away(sc, camera)
        return _push(sc, camera, task)
    if task.kind == "pick":
        if sc.held is not None and sc.held != idx[0]:
            return _put_away(sc, camera)
        return _grasp_or_clear(sc, camera, idx[0])
    if task.kind == "place":
        assert task.target is not None
        if sc.held == idx[0]:
            return _point(sc, camera, np.array([task.target[0], task.target[1], 0.0]), "place")
        if sc.held is not None:
            return _put_away(sc, camera)
        return _grasp_or_clear(sc, camera, idx[0])
    # stack, bottom -> top: fix the first level that is wrong
    for lower, upper in pairwise(idx):
        below = [j for j in range(sc.n_objects) if _above(sc, j) == upper]
        if below == [lower] and sc.held != upper:
            continue
        if sc.held == upper:
            blocker = _above(sc, lower)
            if blocker is None:
                return _on_object(sc, camera, lower, "place")
            return _put_away(sc, camera)
        if sc.held is not None:
            return _put_away(sc, camera)
        for k in (lower, upper):
            blocker = _above(sc, k)
            if blocker is not None and not (k == lower and blocker == upper):
                return _on_object(sc, camera, blocker, "grasp")
        return _on_object(sc, camera, upper, "grasp")
    return DoneAction()


def expert_action(env: Any, thought: bool = False) -> str:
    """The scripted expert's text action for ``env``'s current state.

    Args:
        env: a ``dppo/Tabletop*`` env (wrapped or not), after ``reset``.
        thought: prepend a short ``"thought"`` explaining the step (for distillation).

    Returns:
        The JSON action text (``{"action": {...}}``), parseable by :func:`dppo_embodied.actions.parse_action`.
    """
    inner = _env(env)
    a = plan_action(inner.scene, inner.task, inner.camera)
    text = action_to_json(a)
    if not thought:
        return text
    body = json.loads(text)["action"]
    return json.dumps({"thought": _explain(inner.scene, inner.task, a), "action": body})


def _explain(sc: TabletopScene, task: Task, a: Action) -> str:
    if isinstance(a, DoneAction):
        return "The task is complete."
    if isinstance(a, SkillAction):
        return f"I use the {a.name} skill on the {(a.object or '').replace('_', ' ')}."
    assert isinstance(a, PointAction)
    verb = {"grasp": "grasp the object", "place": "put the held object down", "move_to": "move above the point",
            "push": "push along the table"}[a.then]
    return f"For '{task.instruction}' I {verb} at ({a.x:.2f}, {a.y:.2f})."
