"""Tabletop tasks: instruction text, success and dense progress computed from simulator state.

A :class:`Task` is plain data (kind, objects, optional target point), so the closed-loop envs, the scripted experts
and the sim twin robot share one definition of success. :func:`parse_task` reads both the compact form
(``"stack red_block on blue_block"``) and the instructions the envs write (``"Stack the red block on the blue
block."``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from dppo_embodied.errors import ConfigError
from envs.scene import TARGET_RADIUS, TabletopScene

TASK_KINDS = ("pick", "push", "place", "stack")
#: an object is "at" the target when its centre is within this horizontal distance, metres.
TARGET_TOL = TARGET_RADIUS
#: picked objects must be lifted this far (bottom above the table), metres.
LIFT_HEIGHT = 0.05


@dataclass
class Task:
    """One task.

    Attributes:
        kind: one of :data:`TASK_KINDS`.
        objects: object slugs; for ``stack`` from the bottom up (``["blue_block", "red_block"]`` = red on blue).
        target: ``(x, y)`` world target for ``push``/``place`` (the white disc), metres.
    """

    kind: str
    objects: list[str] = field(default_factory=list)
    target: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.kind not in TASK_KINDS:
            raise ConfigError(f"unknown task kind {self.kind!r}; valid: {', '.join(TASK_KINDS)}")
        need = 2 if self.kind == "stack" else 1
        if len(self.objects) < need:
            raise ConfigError(f"a {self.kind} task needs at least {need} object(s), got {self.objects}")
        if self.kind in ("push", "place") and self.target is None:
            raise ConfigError(f"a {self.kind} task needs a target (x, y)")

    @property
    def instruction(self) -> str:
        """The instruction text shown to the model."""
        names = [s.replace("_", " ") for s in self.objects]
        if self.kind == "pick":
            return f"Pick up the {names[0]}."
        if self.kind == "push":
            return f"Push the {names[0]} onto the white target disc."
        if self.kind == "place":
            return f"Place the {names[0]} on the white target disc."
        if len(names) == 2:
            return f"Stack the {names[1]} on the {names[0]}."
        order = ", then ".join(f"the {n}" for n in names[1:])
        return f"Build a tower on the {names[0]}: stack {order} on top."

    def to_text(self) -> str:
        """Compact form accepted by :func:`parse_task`."""
        if self.kind == "stack":
            return "stack " + " on ".join(reversed(self.objects))
        t = f"{self.kind} {self.objects[0]}"
        if self.target is not None:
            t += f" at {self.target[0]:.3f},{self.target[1]:.3f}"
        return t


_COMPACT = re.compile(r"^\s*(pick|push|place|stack)\s+(.+?)\s*$", re.I)
_AT = re.compile(r"\s+at\s+([-+]?\d*\.?\d+)\s*,\s*([-+]?\d*\.?\d+)\s*$", re.I)
_NAME = r"(?:the\s+)?([a-z]+[ _][a-z]+)"


def parse_task(text: str | Task, target: tuple[float, float] | None = None) -> Task:
    """Read a task from its compact form or an env instruction.

    Args:
        text: e.g. ``"pick red_block"``, ``"push red_block at 0.1,0.05"``, ``"stack red_block on blue_block"``,
            ``"Pick up the red block."``, ``"Stack the red block on the blue block."``; a :class:`Task` passes through.
        target: target ``(x, y)`` for push/place when the text has none.

    Raises:
        ConfigError: when the text is not a task, naming the accepted forms.
    """
    if isinstance(text, Task):
        return text
    t = str(text).strip().rstrip(".").lower()
    t = re.sub(r"^pick up\b", "pick", t)
    t = re.sub(r"\s+onto the white target disc$|\s+on the white target disc$", "", t)
    m = re.match(r"^build a tower on the ([a-z]+ [a-z]+): stack (.+) on top$", t)
    if m:
        rest = [s.strip() for s in re.split(r",\s*then\s+", m.group(2))]
        objs = [m.group(1)] + [re.sub(r"^the\s+", "", s) for s in rest]
        return Task("stack", [o.replace(" ", "_") for o in objs])
    at = _AT.search(t)
    if at:
        target = (float(at.group(1)), float(at.group(2)))
        t = t[: at.start()]
    m = _COMPACT.match(t)
    if not m:
        raise ConfigError(f"cannot read task {text!r}; use e.g. 'pick red_block', 'push red_block at 0.1,0.05' "
                          f"or 'stack red_block on blue_block'")
    kind, rest = m.group(1).lower(), m.group(2)
    names = [re.sub(r"^the\s+", "", s.strip()).replace(" ", "_") for s in re.split(r"\s+on\s+", rest)]
    if kind == "stack":
        return Task(kind, list(reversed(names)))
    return Task(kind, names[:1], target)


def _resting_on(scene: TabletopScene, top: int, bottom: int) -> bool:
    spec = scene.spec
    assert spec is not None
    pt, pb = scene.object_pos(top), scene.object_pos(bottom)
    o_t, o_b = spec.objects[top], spec.objects[bottom]
    dz = pt[2] - pb[2] - (o_t.half_height + o_b.half_height)
    return bool(math.hypot(*(pt[:2] - pb[:2])) <= o_b.half_width and abs(dz) < 0.01 and scene.is_upright(top)
                and scene.held != top)


def evaluate(task: Task, scene: TabletopScene) -> tuple[bool, float]:
    """``(success, progress in [0, 1])`` of ``task`` in the current scene state.

    Raises:
        ConfigError: when the task names an object that is not in the scene.
    """
    spec = scene.spec
    if spec is None:
        raise ConfigError("no scene loaded; call reset() first")
    idx = [spec.index(s) for s in task.objects]
    i = idx[0]
    p = scene.object_pos(i)
    tcp = scene.gripper_pos
    reach = float(np.clip(1.0 - np.linalg.norm(tcp - p) / 0.4, 0.0, 1.0))
    if task.kind == "pick":
        lift = p[2] - spec.objects[i].half_height
        held = scene.held == i
        success = held and lift >= LIFT_HEIGHT - 1e-3
        progress = 0.4 * reach + (0.3 + 0.3 * min(1.0, max(0.0, lift) / LIFT_HEIGHT) if held else 0.0)
        return bool(success), 1.0 if success else float(min(progress, 0.99))
    if task.kind in ("push", "place"):
        tgt = np.asarray(task.target, dtype=float)
        d = float(np.linalg.norm(p[:2] - tgt))
        closeness = float(np.clip(1.0 - d / 0.3, 0.0, 1.0))
        resting = (scene.held != i and scene.on_table(i) and scene.is_upright(i)
                   and p[2] < spec.objects[i].half_height + 0.01)
        success = d <= TARGET_TOL and resting
        if task.kind == "push":
            progress = closeness
        else:
            progress = 0.2 * reach + 0.2 * (scene.held == i) + 0.6 * closeness
        return bool(success), 1.0 if success else float(min(progress, 0.99))
    # stack: idx bottom -> top
    levels = len(idx) - 1
    done = 0
    for k in range(levels):
        if _resting_on(scene, idx[k + 1], idx[k]):
            done += 1
        else:
            break
    success = done == levels
    if success:
        return True, 1.0
    nxt, base = idx[done + 1], idx[done]
    pn, pb = scene.object_pos(nxt), scene.object_pos(base)
    closeness = float(np.clip(1.0 - np.linalg.norm(pn[:2] - pb[:2]) / 0.3, 0.0, 1.0))
    step = 0.2 * float(np.clip(1.0 - np.linalg.norm(tcp - pn) / 0.4, 0.0, 1.0)) + 0.2 * (scene.held == nxt)
    step += 0.6 * closeness
    return False, float(min((done + step) / levels, 0.99))
