"""Point and bounding-box parsers of model text (:func:`parse_points`, :func:`parse_bbox`, :data:`CONVENTIONS`).
Stdlib only.

Re-exported by :mod:`dppo_embodied.parsing`, the usual import path; same contract: never raises on model text,
returns the value or a falsy :class:`~dppo_embodied.answer_text.NoAnswer`. ``_molmo_points`` and ``_size`` are
shared with :mod:`dppo_embodied.actions`.
"""

from __future__ import annotations

import math
import re

from dppo_embodied.answer_text import NoAnswer, strip_think

__all__ = ["CONVENTIONS", "parse_bbox", "parse_points"]

# ------------------------------------------------------------------------------------------- points and boxes
_C = r"([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)"
_SEP = r"(?:\s*,\s*|\s+)"
_PAIR = re.compile(rf"[(\[]\s*{_C}{_SEP}{_C}\s*[)\]]")
_QUAD = re.compile(rf"[(\[]\s*{_C}{_SEP}{_C}{_SEP}{_C}{_SEP}{_C}\s*[)\]]")
_QWEN_BOX = re.compile(rf"<\|box_start\|>\s*\(\s*{_C}{_SEP}{_C}\s*\){_SEP}?\(\s*{_C}{_SEP}{_C}\s*\)")
_XY = re.compile(rf"(?<![A-Za-z0-9_])[\"']?x[\"']?\s*[:=]\s*[\"']?{_C}[\"']?(?:\s*[,;])?\s*"
                 rf"[\"']?y[\"']?\s*[:=]\s*[\"']?{_C}", re.I)
_KEY_BEFORE = re.compile(r"([\"'])([A-Za-z_0-9]+)\1\s*:\s*$")  # a quoted JSON key right before the value
_MOLMO_TAG = re.compile(r"<\s*points?\b([^<>]*)>", re.I)
_ATTR = re.compile(r"([A-Za-z_][\w-]*)\s*=\s*[\"']([^\"']*)[\"']")
_MOLMO2 = re.compile(r"(\d+)\s+(\d{3,4})\s+(\d{3,4})")
CONVENTIONS = ("auto", "normalized", "pixels", "thousand", "percent", "gemini_yx")


def _key_before(t: str, pos: int) -> str:
    m = _KEY_BEFORE.search(t, max(0, pos - 24), pos)
    return m.group(2).lower() if m else ""


def _scale(vals: list[str], conv: str, size: tuple[float, float] | None, thousand_auto: bool = False
           ) -> list[float] | None:
    """Convert x/y-interleaved raw numbers to normalized floats; ``None`` if not convertible."""
    try:
        v = [float(s) for s in vals]
    except ValueError:
        return None
    if conv == "auto":
        if thousand_auto:
            conv = "thousand" if any(abs(a) > 1 for a in v) else "normalized"
        elif any("." in s or "e" in s.lower() for s in vals):
            conv = "normalized"
        elif size:
            conv = "pixels"
        else:
            conv = "thousand" if any(abs(a) > 1 for a in v) else "normalized"
    if conv == "pixels":
        return [a / size[i % 2] for i, a in enumerate(v)] if size else None
    div = {"thousand": 1000.0, "gemini_yx": 1000.0, "percent": 100.0}.get(conv, 1.0)
    return [a / div for a in v]


def _size(image_size: object) -> tuple[float, float] | None:
    try:
        w, h = (float(s) for s in image_size)  # type: ignore[union-attr]
    except Exception:
        return None
    return (w, h) if w > 0 and h > 0 and math.isfinite(w) and math.isfinite(h) else None


def _molmo_points(t: str) -> list[tuple[float, float]]:
    pts: list[tuple[float, float]] = []
    for tag in _MOLMO_TAG.finditer(t):
        attrs = {k.lower(): v for k, v in _ATTR.findall(tag.group(1))}
        raw: list[tuple[str, str, float]] = []
        if "coords" in attrs:  # Molmo2: "x y" or "<idx> x y <idx> x y ...", 0-1000
            nums = attrs["coords"].replace(";", " ").split()
            if len(nums) == 2:
                raw.append((nums[0], nums[1], 1000.0))
            else:
                raw += [(m.group(2), m.group(3), 1000.0) for m in _MOLMO2.finditer(attrs["coords"])]
        if "x" in attrs and "y" in attrs:  # Molmo v1 percent: x/y or x1/y1, x2/y2, ...
            raw.append((attrs["x"], attrs["y"], 100.0))
        i = 1
        while f"x{i}" in attrs and f"y{i}" in attrs:
            raw.append((attrs[f"x{i}"], attrs[f"y{i}"], 100.0))
            i += 1
        for x, y, div in raw:
            try:
                pts.append((float(x) / div, float(y) / div))
            except ValueError:
                continue
    return pts


def parse_points(
    text: str | None, image_size: tuple[int, int] | None = None, convention: str = "auto"
) -> list[tuple[float, float]] | NoAnswer:
    """Extract 2D points as **normalized** ``(x, y)`` (origin top-left, x right).

    Formats: bracketed pairs anywhere ("(0.43, 0.61)", "[(0.1,0.2),(0.3,0.4)]", "[x, y]", nested lists,
    JSON ``{"point_2d": [x, y]}``), ``{"x": .., "y": ..}`` objects, Gemini ``{"point": [y, x]}`` (y first,
    0-1000), Molmo ``<point x="61.5" y="40.6">`` / ``<points x1=.. y1=.. x2=..>`` (percent) and Molmo2
    ``coords="x y"`` (0-1000). Molmo tags, when present, are used alone and always with their own scale.

    Conventions: ``"normalized"`` (0-1), ``"pixels"`` (divide by ``image_size`` = (W, H)), ``"thousand"``
    (0-1000), ``"percent"`` (0-100), ``"gemini_yx"`` (every pair y first, 0-1000), ``"auto"``:
    the RoboPoint/official rule per pair: any decimal point (or exponent) -> normalized; integers -> pixels if
    ``image_size`` is given, else 0-1000 if any value > 1, else normalized. Under ``"auto"`` a pair under the
    quoted JSON key ``"point"`` is Gemini's: y first, 0-1000 if any value > 1 (``"point_2d"`` stays x first).

    Points outside [0, 1] after conversion are kept (scorers give them 0); NaN/inf are dropped.
    4-tuples (boxes) are not points: use :func:`parse_bbox`.

    Args:
        text: model output.
        image_size: ``(width, height)`` in pixels.
        convention: one of :data:`CONVENTIONS`.

    Returns:
        A non-empty list of points, or :class:`NoAnswer`.
    """
    try:
        if convention not in CONVENTIONS:
            return NoAnswer(f"unknown convention {convention!r}; valid: {', '.join(CONVENTIONS)}")
        t = strip_think(text)
        size = _size(image_size) if image_size is not None else None
        pts = _molmo_points(t)
        if not pts:
            found: list[tuple[int, list[float] | None]] = []
            for m in _PAIR.finditer(t):
                gem = convention == "gemini_yx" or (convention == "auto" and _key_before(t, m.start()) == "point")
                v = _scale([m.group(1), m.group(2)], convention, size, thousand_auto=gem)
                found.append((m.start(), None if v is None else ([v[1], v[0]] if gem else v)))
            for m in _XY.finditer(t):
                found.append((m.start(), _scale([m.group(1), m.group(2)], convention, size)))
            if found and all(v is None for _, v in found):
                return NoAnswer("pixel coordinates need image_size")
            pts = [(v[0], v[1]) for _, v in sorted(found, key=lambda f: f[0]) if v is not None]
        pts = [p for p in pts if math.isfinite(p[0]) and math.isfinite(p[1])]
        return pts if pts else NoAnswer("no points found; expected e.g. [(0.43, 0.61)]")
    except Exception as e:  # pragma: no cover
        return NoAnswer(f"unparsable response ({type(e).__name__})")


def parse_bbox(
    text: str | None, image_size: tuple[int, int] | None = None, convention: str = "auto"
) -> tuple[float, float, float, float] | NoAnswer:
    """Extract the **first** box as normalized ``(x0, y0, x1, y1)`` with ``x0 <= x1`` and ``y0 <= y1``.

    Formats: "[x0, y0, x1, y1]", "(x0, y0, x1, y1)", JSON ``{"bbox_2d": [...]}`` (x first), Gemini
    ``{"box_2d": [ymin, xmin, ymax, xmax]}`` (0-1000), Qwen2-VL ``<|box_start|>(x0,y0),(x1,y1)``. Scale rules are
    those of :func:`parse_points` (``"auto"``: decimals -> normalized; integers -> pixels with ``image_size``,
    else 0-1000 if any value > 1). A quoted ``"box_2d"`` key under ``"auto"`` (and every box under
    ``"gemini_yx"``) is read as Gemini's [ymin, xmin, ymax, xmax] on 0-1000.

    Args:
        text: model output.
        image_size: ``(width, height)`` in pixels.
        convention: one of :data:`CONVENTIONS`.

    Returns:
        The box, or :class:`NoAnswer`.
    """
    try:
        if convention not in CONVENTIONS:
            return NoAnswer(f"unknown convention {convention!r}; valid: {', '.join(CONVENTIONS)}")
        t = strip_think(text)
        size = _size(image_size) if image_size is not None else None
        cands = [(m.start(), m) for m in _QUAD.finditer(t)] + [(m.start(), m) for m in _QWEN_BOX.finditer(t)]
        for _, m in sorted(cands, key=lambda c: c[0]):
            raw = list(m.groups())
            gem = convention == "gemini_yx" or (convention == "auto" and _key_before(t, m.start()) == "box_2d")
            if gem:
                raw = [raw[1], raw[0], raw[3], raw[2]]
            v = _scale(raw, convention, size, thousand_auto=gem)
            if v is None:
                return NoAnswer("pixel coordinates need image_size")
            if all(math.isfinite(a) for a in v):
                return (min(v[0], v[2]), min(v[1], v[3]), max(v[0], v[2]), max(v[1], v[3]))
        return NoAnswer("no bounding box found; expected e.g. [x0, y0, x1, y1]")
    except Exception as e:  # pragma: no cover
        return NoAnswer(f"unparsable response ({type(e).__name__})")
