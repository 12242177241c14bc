"""RoboPoint pointing answers: parsing tuples into pixel points and boxes, and the fraction inside a mask.

The official rule (RoboPoint ``summarize_vqa.py``, as the Pelican-VL evaluation applies it): every tuple matched
by a regex, a 2-tuple with a decimal point is normalised (times the image size), **integers are pixels**, a
4-tuple is a box (all its pixels), and the score is the mean over points of the mask value, out-of-image points
counting 0. The array arithmetic is numpy's, as in the official code, so sums round identically.

The official regexes are rewritten here to match the same tuples in linear time and constant memory: their
number ``[-+]?\\d+\\.?\\d*`` splits a digit run in every possible way (quadratic: "(" + 50,000 digits took
115 s) and their lazy repetition keeps one saved state per element (63 MB for a 240 kB list). A number is written
unambiguously and each bracket's run of numbers is atomic (``(?>...)``, ``*+``): the lazy official pattern closes
a tuple at the first closing bracket right after a number, no number can be cut shorter to make one follow, so
the longest run either ends at a closing bracket (the same match) or the opening bracket matches nothing (as
officially). ``tests/benchmarks/test_pathological.py`` checks the equality against the official patterns. Boxes
are summed over a mask slice instead of being expanded into pixel lists (60 full-image boxes were 18 million
Python points).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

_NUM = r"[-+]?\d+(?:\.\d*)?"  # RoboPoint's [-+]?\d+\.?\d*: the same strings, one way to match them
#: RoboPoint's ``\((NUM(?:,\s*NUM)*?)\)``: parenthesised tuples.
PAREN_TUPLES = re.compile(rf"\((?>({_NUM}(?:,\s*{_NUM})*+))\)")
#: Pelican's ``[\[\(](NUM(?:\s*,\s*NUM)*?)[\]\)]``: "(" or "[" on either side.
ANY_TUPLES = re.compile(rf"[\[\(](?>({_NUM}(?:\s*,\s*{_NUM})*+))[\]\)]")
#: Pelican's nested-list pattern ``\[(?:\[NUM(?:\s*,\s*NUM)*?\](?:\s*,\s*\[NUM(?:\s*,\s*NUM)*?\])*?)\]``:
#: its whole match never reads as numbers, so an answer it matches is invalid.
NESTED_LISTS = re.compile(
    rf"\[(?>\[{_NUM}(?:\s*,\s*{_NUM})*+\](?:\s*,\s*\[{_NUM}(?:\s*,\s*{_NUM})*+\])*+)\]")
#: lmms-eval's and VLMEvalKit's number ``[-+]?\d*\.?\d+``, written unambiguously (the same strings)
DECIMAL = r"[-+]?(?:\d+(?:\.\d+)?|\.\d+)"
_LMMS_PAIR = re.compile(rf"\(\s*({DECIMAL})\s*,\s*({DECIMAL})\s*\)")

#: A parsed answer item in pixels: a point ``(x, y)`` or a box ``(x0, y0, x1, y1)`` (end exclusive).
Target = tuple[int, ...]


def _pixel(value: float, size: int) -> int:
    """``int(value * size)``; an infinite or NaN coordinate (e.g. 400 digits before the point) is a parse error."""
    try:
        return int(value * size)
    except (OverflowError, ValueError) as e:
        raise ValueError(f"coordinate {value!r} is not a finite number") from e


def text_to_targets(text: str, width: int, height: int, style: str = "paren") -> list[Target]:
    """RoboPoint ``text2pixels`` without expanding boxes: the pixel points and boxes of every tuple, in order.

    Args:
        text: the answer.
        width: image width (normalised values are multiplied by it).
        height: image height.
        style: ``"paren"`` (RoboPoint: "(x, y)" tuples) or ``"pelican"`` ("(x, y)" and "[x, y]" tuples; an
            answer with a nested list ``[[x, y], ...]`` is invalid, as the official nested-list pattern's match
            never reads as numbers).

    A 2-tuple with a decimal point is normalised (``int(v * size)``), integers are pixels; a 4-tuple is a box
    whose first value decides the scale (as in the official code); other lengths are ignored.

    Raises:
        ValueError: a tuple that does not read as numbers (an integer over Python's 4,300 digits), a non-finite
            normalised coordinate, or a nested list (``style="pelican"``).
    """
    out: list[Target] = []
    for match in (ANY_TUPLES if style == "pelican" else PAREN_TUPLES).findall(text):
        vec = [float(n) if "." in n else int(n) for n in match.split(",")]
        if len(vec) == 2:
            x, y = vec
            if isinstance(x, float) or isinstance(y, float):
                x, y = _pixel(x, width), _pixel(y, height)
            out.append((x, y))
        elif len(vec) == 4:
            x0, y0, x1, y1 = vec
            if isinstance(x0, float):
                x0, y0, x1, y1 = _pixel(x0, width), _pixel(y0, height), _pixel(x1, width), _pixel(y1, height)
            out.append((x0, y0, x1, y1))  # type: ignore[arg-type]  # a float left here fails when sliced
    if style == "pelican" and NESTED_LISTS.search(text):
        raise ValueError("a nested list [[x, y], ...] does not read as numbers (official: invalid answer)")
    return out


def box_region(mask: np.ndarray, box: Target, grid: tuple[int, int]) -> tuple[np.ndarray, int]:
    """``(mask values inside the image, pixel count)`` of a box, with the official ``box[y0:y1, x0:x1] = 1`` on
    a ``grid = (width, height)`` array: numpy slice rules (negative values count from the end, values past the
    grid are clipped, a float is a ``TypeError``); grid pixels outside the mask count in the total with 0."""
    x0, y0, x1, y1 = box
    xs = range(*slice(x0, x1).indices(grid[0]))
    ys = range(*slice(y0, y1).indices(grid[1]))
    if not xs or not ys:
        return mask[0:0, 0:0], 0
    return mask[ys.start: ys.stop, xs.start: xs.stop], len(xs) * len(ys)


def mask_accuracy(points: np.ndarray, mask: np.ndarray, boxes: Sequence[Target] = (),
                  grid: tuple[int, int] | None = None) -> float:
    """Mean of ``mask[y, x]`` over points, 0 for points outside the image, 0 without points (official numpy).

    ``boxes`` count each of their pixels (on a ``grid = (width, height)`` image, default the mask's size) as one
    more point, as RoboPoint expands a box into all its pixels; their mask values are summed over the box's slice,
    never expanded, so 60 full-image boxes take 60 array sums instead of 18 million Python points. Without boxes
    the arithmetic is the official one bit for bit; with boxes the sum is grouped per box, which may differ from
    the official per-pixel mean in the last bits of the float.
    """
    h, w = mask.shape[:2]
    regions = [box_region(mask, b, grid or (w, h)) for b in boxes]
    n_box = sum(n for _, n in regions)
    box_sum = sum(float(r.sum(dtype=np.float64)) for r, _ in regions)
    if len(points) == 0:
        return box_sum / n_box if n_box else 0.0
    ok = (points[:, 0] >= 0) & (points[:, 0] < w) & (points[:, 1] >= 0) & (points[:, 1] < h)
    values = np.concatenate([mask[points[ok, 1], points[ok, 0]], np.zeros(points.shape[0] - ok.sum())])
    if not regions:
        return float(values.mean())
    return (float(values.sum(dtype=np.float64)) + box_sum) / (len(values) + n_box)


def targets_accuracy(targets: Sequence[Target], mask: np.ndarray, grid: tuple[int, int] | None = None) -> float:
    """:func:`mask_accuracy` of the points and boxes of :func:`text_to_targets` (parsed on a ``grid`` image)."""
    return mask_accuracy(point_array(targets), mask, [t for t in targets if len(t) == 4], grid)


def point_array(targets: Sequence[Target]) -> np.ndarray:
    return np.array([t for t in targets if len(t) == 2])


def lmms_eval_points(text: str, width: int, height: int) -> np.ndarray:
    """lmms-eval ``original``: only "(x, y)" 2-tuples, every value read as normalised (integers too)."""
    pts = []
    for m in _LMMS_PAIR.finditer(text):
        pts.append((_pixel(float(m.group(1)), width), _pixel(float(m.group(2)), height)))
    return np.array(pts)
