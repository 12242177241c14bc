"""The text-action envelope (robotics.md section 5): typed actions parsed defensively from model text.

Canonical envelope, one JSON object::

    {"thought": "optional", "action": {"type": "point", "x": 0.43, "y": 0.61, "then": "move_to"}}
    {"action": {"type": "move", "dx_cm": 2.0, "dy_cm": -1.0, "dz_cm": 0.0, "gripper": "open"}}
    {"action": {"type": "skill", "name": "pick", "object": "red_block"}}
    {"action": {"type": "done"}}

Canonical coordinates are normalized ``x, y`` in [0, 1], origin top-left, x right. Parsers never raise on model
text; a :class:`~dppo_embodied.parsing.NoAnswer` reason is written to be shown to the model as env feedback
("Last action is invalid: <reason>"). Also importable from :mod:`dppo_embodied.parsing` (re-exported there).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from dppo_embodied.answer_text import NoAnswer, strip_think
from dppo_embodied.lenient_json import FAIL, json_spans, loads_lenient
from dppo_embodied.points import _molmo_points, _size

__all__ = [
    "ACTION_TYPES",
    "THEN_CHOICES",
    "Action",
    "DoneAction",
    "MoveAction",
    "PointAction",
    "SkillAction",
    "action_to_json",
    "parse_action",
    "parse_actions",
]

ACTION_TYPES = ("point", "move", "skill", "done")
THEN_CHOICES = ("move_to", "push", "grasp", "place")
_EXAMPLE = '{"action": {"type": "point", "x": 0.5, "y": 0.5}}'


@dataclass(frozen=True)
class PointAction:
    """Go to an image point (normalized x, y in [0, 1], origin top-left), then ``then`` (see THEN_CHOICES)."""

    x: float
    y: float
    then: str = "move_to"


@dataclass(frozen=True)
class MoveAction:
    """Relative end-effector motion in centimetres; ``gripper`` is "open", "close" or None (unchanged)."""

    dx_cm: float = 0.0
    dy_cm: float = 0.0
    dz_cm: float = 0.0
    gripper: str | None = None


@dataclass(frozen=True)
class SkillAction:
    """A named scripted skill (lower-case name) with an optional object and target."""

    name: str
    object: str | None = None
    target: str | None = None


@dataclass(frozen=True)
class DoneAction:
    """The model declares the task finished."""


Action = PointAction | MoveAction | SkillAction | DoneAction

_DONE_WORD = re.compile(r"[\W_]*done[\W_]*", re.I)
_MAX_SPANS = 32
_GRIP_OPEN = frozenset({"open", "opened", "1", "+1", "1.0", "release", "true"})
_GRIP_CLOSE = frozenset({"close", "closed", "0", "-1", "0.0", "-1.0", "grip", "false"})
_GRIP_NONE = frozenset({"", "none", "null", "keep", "unchanged", "same"})


def _action_like(data: Any) -> bool:
    if isinstance(data, list):
        return bool(data) and _action_like(data[0])
    return isinstance(data, dict) and any(k in data for k in ("action", "actions", "type", "point", "point_2d"))


# ------------------------------------------------------------------------------------------- field validation
def _num(v: Any) -> float | None:
    """A float from a JSON number or numeric string; None if not numeric (inf/nan are returned as is)."""
    if isinstance(v, bool):
        return None
    try:
        if isinstance(v, (int, float)):
            return float(v)
        if isinstance(v, str):
            return float(v.strip())
    except (ValueError, OverflowError):
        return math.inf if isinstance(v, int) else None
    return None


def _canon_name(name: str) -> str:
    return name.strip().lower()


def _canon_then(then: str) -> str:
    t = re.sub(r"[\s\-]+", "_", then.strip().lower())
    return "move_to" if t in ("moveto", "move", "goto", "go_to") else t


def _opt_str(v: Any, field: str) -> str | NoAnswer | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (str, int, float)):
        return NoAnswer(f"'{field}' must be a string")
    return str(v).strip() or None


def _point(item: dict[str, Any], size: tuple[float, float] | None, gemini: bool) -> PointAction | NoAnswer:
    if "x" in item or "y" in item:
        raw: Any = [item.get("x"), item.get("y")]
    else:
        raw = next((item[k] for k in ("point", "point_2d", "coords", "xy") if k in item), None)
        if isinstance(raw, str):
            raw = re.split(r"[\s,;]+", raw.strip(" ()[]"))
    if not isinstance(raw, (list, tuple)) or len(raw) != 2:
        return NoAnswer('a point action needs numeric "x" and "y" (e.g. "x": 0.43, "y": 0.61)')
    vals = [_num(v) for v in raw]
    if vals[0] is None or vals[1] is None:
        return NoAnswer('point "x" and "y" must be numbers')
    a, b = vals[0], vals[1]
    if not (math.isfinite(a) and math.isfinite(b)):
        return NoAnswer("point coordinates must be finite numbers")
    if gemini:  # Gemini Robotics-ER: [y, x] on 0-1000
        a, b = b, a
    if max(a, b) > 1:
        a, b = (a / size[0], b / size[1]) if size and not gemini else (a / 1000, b / 1000)
    if not (0 <= a <= 1 and 0 <= b <= 1):
        return NoAnswer(f"point ({a:.4g}, {b:.4g}) is outside the image; use normalized x, y in [0, 1]")
    then = item.get("then")
    then = "move_to" if then is None or then == "" else _canon_then(then) if isinstance(then, str) else then
    if then not in THEN_CHOICES:
        return NoAnswer(f"invalid 'then' {then!r}; valid: {', '.join(THEN_CHOICES)}")
    return PointAction(a, b, then)


def _gripper(g: Any) -> str | NoAnswer | None:
    if g is None:
        return None
    if isinstance(g, bool):
        return "open" if g else "close"
    if isinstance(g, (int, float)) and math.isfinite(g):
        return "open" if g > 0 else "close"
    if isinstance(g, str):
        s = g.strip().lower()
        if s in _GRIP_OPEN:
            return "open"
        if s in _GRIP_CLOSE:
            return "close"
        if s in _GRIP_NONE:
            return None
    return NoAnswer(f'invalid gripper {g!r}; use "open", "close" or null')


def _move(item: dict[str, Any]) -> MoveAction | NoAnswer:
    deltas = []
    for axis in "xyz":
        key = f"d{axis}_cm" if f"d{axis}_cm" in item else f"d{axis}"
        v = item.get(key)
        f = 0.0 if v is None else _num(v)
        if f is None:
            return NoAnswer(f"'{key}' must be a number of centimetres")
        if not math.isfinite(f):
            return NoAnswer(f"'{key}' must be a finite number")
        deltas.append(f)
    grip = _gripper(item.get("gripper"))
    if isinstance(grip, NoAnswer):
        return grip
    return MoveAction(deltas[0], deltas[1], deltas[2], grip)


def _skill(item: dict[str, Any], name: Any, skills: Collection[str] | None) -> SkillAction | NoAnswer:
    if not isinstance(name, str) or not name.strip():
        return NoAnswer("a skill action needs a non-empty 'name'")
    name = _canon_name(name)
    if skills is not None:
        allowed = sorted({_canon_name(str(s)) for s in skills})
        if name not in allowed:
            return NoAnswer(f"unknown skill {name!r}; valid: {', '.join(allowed) or '(none)'}")
    obj = _opt_str(item.get("object", item.get("obj")), "object")
    target = _opt_str(item.get("target", item.get("destination", item.get("location"))), "target")
    for v in (obj, target):
        if isinstance(v, NoAnswer):
            return v
    return SkillAction(name, obj, target)  # type: ignore[arg-type]


def _one(item: Any, size: tuple[float, float] | None, skills: Collection[str] | None) -> Action | NoAnswer:
    if isinstance(item, str):
        item = {"type": item}
    if not isinstance(item, dict):
        return NoAnswer(f"an action must be a JSON object like {_EXAMPLE}")
    typ = item.get("type")
    if typ is None and ("point" in item or "point_2d" in item):
        return _point(item, size, gemini="point" in item)
    if not isinstance(typ, str):
        return NoAnswer(f"the action needs a 'type'; valid types: {', '.join(ACTION_TYPES)}")
    typ = typ.strip().lower()
    if typ == "point":
        return _point(item, size, gemini=False)
    if typ == "move":
        return _move(item)
    if typ == "skill":
        return _skill(item, item.get("name", item.get("skill")), skills)
    if typ == "done":
        return DoneAction()
    if skills is not None and typ in {_canon_name(str(s)) for s in skills}:
        return _skill(item, typ, skills)
    return NoAnswer(f"unknown action type {typ!r}; valid types: {', '.join(ACTION_TYPES)}")


def _interpret(data: Any, size: tuple[float, float] | None, skills: Collection[str] | None, first_only: bool
               ) -> list[Action] | NoAnswer:
    items: Any = data
    if isinstance(data, dict):
        if isinstance(data.get("actions"), list):
            items = data["actions"]
        elif "action" in data:
            a = data["action"]
            rest = {k: v for k, v in data.items() if k not in ("action", "thought")}
            items = a if isinstance(a, list) else [{**rest, "type": a} if isinstance(a, str) else a]
        else:
            items = [data]
    if not items:
        return NoAnswer(f"the action list is empty; reply with e.g. {_EXAMPLE}")
    out: list[Action] = []
    for k, item in enumerate(items[:1] if first_only else items):
        a = _one(item, size, skills)
        if isinstance(a, NoAnswer):
            return a if len(items) == 1 or first_only else NoAnswer(f"action {k + 1}: {a.reason}")
        out.append(a)
    return out


def parse_actions(
    text: str | None, image_size: tuple[int, int] | None = None, skills: Collection[str] | None = None
) -> list[Action] | NoAnswer:
    """Parse every action of a response (a list, ``{"actions": [...]}`` or one action); all must be valid.

    See :func:`parse_action` for the accepted forms and rules. Molmo ``<point>`` tags give one
    :class:`PointAction` per point.

    Args:
        text: model output.
        image_size: ``(width, height)``; point values > 1 are pixels when given, else 0-1000.
        skills: allowlist of skill names (case-insensitive); ``None`` allows any.

    Returns:
        A non-empty list of actions, or :class:`NoAnswer` (for a list, the reason names the bad action).
    """
    return _parse(text, image_size, skills, first_only=False)


def parse_action(
    text: str | None, image_size: tuple[int, int] | None = None, skills: Collection[str] | None = None
) -> Action | NoAnswer:
    """Parse one action from model text (the first one when the response holds a list).

    Accepted: ``{"thought": ..., "action": {...}}``, a bare action object ``{"type": "point", ...}``, a list of
    actions (first taken), ``{"actions": [...]}``; JSON inside code fences or surrounded by text, inside
    ``<answer>`` and after ``<think>``; single quotes, trailing commas, Python True/False/None, bare keys.
    Without JSON: a Molmo ``<point x=.. y=..>`` tag (percent) or the word DONE alone.

    Rules:
      * point: "x"/"y" (numbers or numeric strings) or ``"point": [x, y]`` / ``"point_2d"``. Values in [0, 1] are
        normalized; if any value is > 1 they are pixels when ``image_size`` is given, else 0-1000. An object with
        "point" and no "type" is Gemini's ``{"point": [y, x]}`` (y first, 0-1000). After conversion x, y must
        lie in [0, 1]. "then" defaults to "move_to"; one of THEN_CHOICES ("move to" -> "move_to").
      * move: "dx_cm"/"dy_cm"/"dz_cm" (or "dx"/"dy"/"dz", in cm); missing axes are 0. "gripper": "open"/
        "opened"/1/true -> "open"; "close"/"closed"/0/-1/false -> "close"; null/"none"/"keep" -> None.
      * skill: "name" (or "skill") lower-cased; with ``skills`` the name must be in the allowlist. With an
        allowlist, ``{"type": "<skill name>"}`` is accepted as that skill.
      * done: ``{"type": "done"}`` or the word DONE alone.
      * Non-finite numbers and unknown types give :class:`NoAnswer` with a readable reason.

    Args:
        text: model output.
        image_size: ``(width, height)``; point values > 1 are pixels when given, else 0-1000.
        skills: allowlist of skill names (case-insensitive); ``None`` allows any.

    Returns:
        The action, or :class:`NoAnswer`.
    """
    acts = _parse(text, image_size, skills, first_only=True)
    return acts if isinstance(acts, NoAnswer) else acts[0]


def _parse(text: Any, image_size: Any, skills: Collection[str] | None, first_only: bool) -> list[Action] | NoAnswer:
    try:
        t = strip_think(text)
        if not t:
            return NoAnswer(f"empty response; reply with one JSON action such as {_EXAMPLE}")
        size = _size(image_size) if image_size is not None else None
        for start, end in json_spans(t)[:_MAX_SPANS]:
            data = loads_lenient(t[start:end])
            if data is not FAIL and _action_like(data):
                return _interpret(data, size, skills, first_only)
        points = _molmo_points(t)[: 1 if first_only else None]  # already normalized (percent / 0-1000 tags)
        if points:
            for x, y in points:
                if not (math.isfinite(x) and math.isfinite(y) and 0 <= x <= 1 and 0 <= y <= 1):
                    return NoAnswer(f"point ({x:.4g}, {y:.4g}) is outside the image; use normalized x, y in [0, 1]")
            return [PointAction(x, y) for x, y in points]
        if _DONE_WORD.fullmatch(t):
            return [DoneAction()]
        what = "could not read the JSON action" if "{" in t else "no JSON action found"
        return NoAnswer(f"{what}; reply with one JSON object such as {_EXAMPLE}")
    except Exception as e:  # pragma: no cover - defensive: parsers never raise on model text
        return NoAnswer(f"unparsable action ({type(e).__name__})")


def action_to_json(a: Action) -> str:
    """The canonical envelope ``{"action": {...}}`` for an action; :func:`parse_action` round-trips it exactly.

    Floats are written with ``repr`` precision, skill names lower-cased and stripped, empty optional fields and
    a ``None`` gripper omitted. Raises ``TypeError`` for anything that is not an action (a programming error).
    """
    body: dict[str, Any]
    if isinstance(a, PointAction):
        body = {"type": "point", "x": float(a.x), "y": float(a.y), "then": _canon_then(a.then)}
    elif isinstance(a, MoveAction):
        body = {"type": "move", "dx_cm": float(a.dx_cm), "dy_cm": float(a.dy_cm), "dz_cm": float(a.dz_cm)}
        if a.gripper is not None:
            body["gripper"] = a.gripper
    elif isinstance(a, SkillAction):
        body = {"type": "skill", "name": _canon_name(a.name)}
        for key, v in (("object", a.object), ("target", a.target)):
            if v is not None and str(v).strip():
                body[key] = str(v).strip()
    elif isinstance(a, DoneAction):
        body = {"type": "done"}
    else:
        raise TypeError(f"not an action: {a!r}")
    return json.dumps({"action": body}, ensure_ascii=False)
