"""The one definition of success per answer type, shared by benchmark scorers and RL rewards.

:func:`score_sample` scores a raw model response against an :class:`~dppo_embodied.types.EmbodiedSample`;
training rewards call it per completion, benchmark adapters reuse the primitive metrics below
(:func:`mra`, :func:`points_in_mask`, :func:`point_in_polygon`, :func:`bbox_iou`, :func:`sequence_score`).
Every response is first reduced with :func:`dppo_embodied.parsing.strip_think` (inside the parsers), so reasoning
is never scored.

Per answer type (``value`` in [0, 1]; ``success`` = ``value == 1`` for exact types, ``value >= 0.5`` for the
continuous ones):

=========== =====================================================================================================
mcq         :func:`~dppo_embodied.parsing.parse_option` with ``num_options=len(options)`` and the option texts;
            exact letter match.
yes_no      :func:`~dppo_embodied.parsing.parse_yes_no`; exact match.
number      :func:`~dppo_embodied.parsing.parse_number` (unit from ``metadata["unit"]``); value = :func:`mra`
            (VSI-Bench mean relative accuracy). Continuous.
count       :func:`~dppo_embodied.parsing.parse_count`; exact match by default. ``count_metric="mra"`` (argument
            or ``metadata["count_metric"]``) scores with :func:`mra` instead, as VSI-Bench does for counting.
points      :func:`~dppo_embodied.parsing.parse_points` (``image_size`` = ``metadata["image_size"]`` as [W, H], so
            integer answers are pixels: the RoboPoint rule). Region: ``metadata["mask"]`` (value =
            :func:`points_in_mask`, continuous mask values), else ``metadata["polygon"]`` (fraction of points
            inside, :func:`point_in_polygon`), else the example points in ``answer`` (fraction of predicted points
            within ``metadata["tolerance"]``, default 0.05 normalized, of an example point). Continuous.
bbox        :func:`~dppo_embodied.parsing.parse_bbox`; value = :func:`bbox_iou` with the answer box. Continuous.
sequence    :func:`~dppo_embodied.parsing.parse_sequence` (option texts from ``options`` if any); value =
            :func:`sequence_score` (LCS ratio). Continuous.
free        normalized exact match (:func:`~dppo_embodied.parsing.normalize_step` on both sides).
action      :func:`~dppo_embodied.parsing.parse_action` succeeds and its kind and named fields (``type``,
            ``name``/``skill``, ``object``, ``target``, ``gripper``, ``then``) equal those of the expected action;
            coordinates are not compared.
=========== =====================================================================================================

``format_ok`` is true when the response is ``<think>...</think><answer>...</answer>`` (or only
``<answer>...</answer>``), nothing else around them, **and** the answer parses for the type.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.masks import decode_mask, load_mask
from dppo_embodied import parsing
from dppo_embodied.parsing import NoAnswer, normalize_step
from dppo_embodied.types import AnswerType, EmbodiedSample

__all__ = [
    "CONTINUOUS_TYPES",
    "MRA_THRESHOLDS",
    "SUCCESS_THRESHOLD",
    "Score",
    "bbox_iou",
    "decode_mask",
    "format_ok",
    "load_mask",
    "mra",
    "pixel_points_in_mask",
    "point_in_polygon",
    "points_in_mask",
    "score_sample",
    "sequence_score",
]

#: Answer types scored on a continuous scale (success means value >= 0.5).
CONTINUOUS_TYPES = frozenset({AnswerType.NUMBER, AnswerType.POINTS, AnswerType.BBOX, AnswerType.SEQUENCE})

#: A continuous score counts as a success from this value on (with 1e-9 slack for float rounding: IoU 0.4999...).
SUCCESS_THRESHOLD = 0.5

#: VSI-Bench's 10 MRA tolerances ``1 - theta`` for theta in 0.50, 0.55, ..., 0.95, computed exactly as the
#: official code does (``np.linspace(0.5, 0.95, int((0.95 - 0.5) / 0.05 + 2))``; float rounding makes it 10).
MRA_THRESHOLDS: tuple[float, ...] = tuple(float(1 - t) for t in np.linspace(0.5, 0.95, int((0.95 - 0.5) / 0.05 + 2)))


@dataclass(frozen=True)
class Score:
    """The score of one response.

    Attributes:
        value: in [0, 1].
        success: ``value == 1`` for exact types; ``value >= 0.5`` for continuous ones (MRA, points, IoU, sequence).
        parsed: the parsed answer, or ``None`` when the response did not parse.
        format_ok: the response is ``<think>...</think><answer>...</answer>`` (or just ``<answer>...</answer>``)
            and its answer parses for the type.
        reason: why the response did not parse (or why it failed), empty otherwise.
    """

    value: float
    success: bool
    parsed: Any
    format_ok: bool
    reason: str = ""


# --------------------------------------------------------------------------------------------- primitive metrics
def mra(pred: float, gt: float) -> float:
    """VSI-Bench mean relative accuracy: mean over the 10 thresholds theta of ``|pred - gt| / |gt| <= 1 - theta``.

    The official code divides by ``gt`` with no zero guard (a zero ground truth always scores 0 there); here a
    zero ground truth scores 1 for an exact zero prediction and 0 otherwise. Non-finite values score 0.

    >>> mra(10.0, 10.0), mra(12.0, 10.0), mra(16.0, 10.0)
    (1.0, 0.6, 0.0)
    """
    try:
        pred, gt = float(pred), float(gt)
    except (TypeError, ValueError):
        return 0.0
    if not (math.isfinite(pred) and math.isfinite(gt)):
        return 0.0
    if gt == 0:
        return 1.0 if pred == 0 else 0.0
    rel = abs(pred - gt) / abs(gt)
    return sum(1 for tol in MRA_THRESHOLDS if rel <= tol) / len(MRA_THRESHOLDS)


def pixel_points_in_mask(pixels: Sequence[tuple[int, int]], mask: np.ndarray, binarize: bool = False) -> float:
    """RoboPoint's rule on integer pixel coordinates: mean over points of ``mask[y, x] / 255``.

    Args:
        pixels: ``(x, y)`` integer pixel coordinates (column, row), origin top-left.
        mask: ``(H, W)`` uint8 mask (0 = outside, 255 = inside; JPEG masks have intermediate values that give
            fractional credit).
        binarize: round ``mask / 255`` to {0, 1} first (lmms-eval's ``original`` Where2Place variant).

    Returns:
        The mean in [0, 1]; points outside the image count 0; no points gives 0.
    """
    if len(pixels) == 0:
        return 0.0
    h, w = mask.shape[:2]
    total = 0.0
    for x, y in pixels:
        x, y = int(x), int(y)
        if 0 <= x < w and 0 <= y < h:
            v = float(mask[y, x]) / 255.0
            total += float(round(v)) if binarize else v
    return total / len(pixels)


def points_in_mask(points: Sequence[tuple[float, float]], mask: np.ndarray, binarize: bool = False) -> float:
    """RoboPoint's rule on normalized points: mean over points of the mask value / 255 (not binarised).

    A point ``(x, y)`` in [0, 1] maps to pixel ``(int(x * W), int(y * H))`` as in RoboPoint's ``text2pixels``
    (a tiny epsilon absorbs float error so that a pixel answer converted to [0, 1] and back lands on itself).

    Args:
        points: normalized ``(x, y)``, origin top-left, x to the right.
        mask: ``(H, W)`` uint8 mask.
        binarize: round mask values to {0, 1} (lmms-eval variant).

    Returns:
        The mean in [0, 1]; out-of-image points count 0; no points gives 0.
    """
    h, w = mask.shape[:2]
    pixels = []
    for x, y in points:
        fx, fy = float(x) * w, float(y) * h
        if not (math.isfinite(fx) and math.isfinite(fy)):
            pixels.append((-1, -1))
            continue
        pixels.append((int(fx + 1e-6), int(fy + 1e-6)))
    return pixel_points_in_mask(pixels, mask, binarize=binarize)


def point_in_polygon(x: float, y: float, polygon: Sequence[Sequence[float]]) -> bool:
    """Even-odd ray casting; points exactly on an edge may fall either way.

    (RoboSpatial-Home's official scorer uses a variant in which every vertical edge at the point's height flips
    the result; :mod:`benchmarks.scoring.spatial` reproduces that for exact official numbers.)

    Args:
        x: point x, in the same frame as the polygon (normalized for RoboSpatial).
        y: point y.
        polygon: vertices ``[(x, y), ...]``; fewer than 3 vertices contain nothing.
    """
    n = len(polygon)
    if n < 3:
        return False
    inside = False
    px, py = float(x), float(y)
    j = n - 1
    for i in range(n):
        xi, yi = float(polygon[i][0]), float(polygon[i][1])
        xj, yj = float(polygon[j][0]), float(polygon[j][1])
        if (yi > py) != (yj > py) and px < (xj - xi) * (py - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def bbox_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes (continuous coordinates, corners in any order).

    >>> bbox_iou((0, 0, 2, 2), (1, 1, 3, 3))
    0.14285714285714285
    """
    ax0, ax1 = sorted((float(a[0]), float(a[2])))
    ay0, ay1 = sorted((float(a[1]), float(a[3])))
    bx0, bx1 = sorted((float(b[0]), float(b[2])))
    by0, by1 = sorted((float(b[1]), float(b[3])))
    iw = max(0.0, min(ax1, bx1) - max(ax0, bx0))
    ih = max(0.0, min(ay1, by1) - max(ay0, by0))
    inter = iw * ih
    union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
    if union <= 0 or not math.isfinite(union):
        return 0.0
    return inter / union


def sequence_score(pred: Sequence[str], gt: Sequence[str]) -> float:
    """Order-aware plan similarity: ``LCS(pred, gt) / max(len(pred), len(gt))`` over normalized steps.

    Steps are compared after :func:`~dppo_embodied.parsing.normalize_step` (case, punctuation, whitespace).
    The exact plan scores 1.0; a missing, extra or swapped step costs in proportion; an empty prediction 0.
    Dividing by the longer length penalises padding a plan with extra steps.

    >>> sequence_score(["pick red", "place bowl"], ["Pick red.", "place  bowl"])
    1.0
    >>> sequence_score(["b", "a", "c"], ["a", "b", "c"])
    0.6666666666666666
    """
    p = [normalize_step(s) for s in pred]
    g = [normalize_step(s) for s in gt]
    if not p or not g:
        return 0.0
    prev = [0] * (len(g) + 1)
    for si in p:
        cur = [0]
        for j, gj in enumerate(g):
            cur.append(prev[j] + 1 if si == gj else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1] / max(len(p), len(g))


# ------------------------------------------------------------------------------------------------ format check
def format_ok(response: str | None) -> bool:
    """True when the response is ``<think>...</think><answer>...</answer>`` or ``<answer>...</answer>`` only.

    Exactly ``re.fullmatch(r"\\s*(?:<think>.*?</think>\\s*)?<answer>(.*?)</answer>\\s*", response, re.S)`` with
    a single ``<answer>``, in linear time (the regex backtracks over every ``</think>``/``</answer>`` pair):
    the one ``<answer>`` splits the response into a head (blank, or ``<think>...</think>`` between blanks) and a
    tail ending with ``</answer>`` and blanks. Blanks are what ``\\s`` and ``str.strip`` both call whitespace.
    """
    if not isinstance(response, str) or response.count("<answer>") != 1:
        return False
    head, _, tail = response.partition("<answer>")
    head = head.strip()
    think = len(head) >= len("<think></think>") and head.startswith("<think>") and head.endswith("</think>")
    return (not head or think) and tail.rstrip().endswith("</answer>")


# ------------------------------------------------------------------------------------------------ score_sample
def _exact(parsed: Any, ok: bool, fmt: bool, reason: str = "") -> Score:
    return Score(1.0 if ok else 0.0, ok, parsed, fmt, reason)


def _continuous(value: float, parsed: Any, fmt: bool, reason: str = "") -> Score:
    value = min(1.0, max(0.0, float(value))) if math.isfinite(value) else 0.0
    return Score(value, value >= SUCCESS_THRESHOLD - 1e-9, parsed, fmt, reason)


def _failed(parsed: NoAnswer) -> Score:
    return Score(0.0, False, None, False, parsed.reason or "unparsable response")


def _points_score(sample: EmbodiedSample, pts: list[tuple[float, float]]) -> float:
    md = sample.metadata
    if isinstance(md.get("mask"), str) and md["mask"]:
        return points_in_mask(pts, load_mask(md["mask"]))
    if md.get("polygon"):
        poly = md["polygon"]
        return sum(point_in_polygon(x, y, poly) for x, y in pts) / len(pts)
    tol = float(md.get("tolerance", 0.05))
    refs = [(float(a), float(b)) for a, b in sample.answer]
    if not refs:
        return 0.0
    hits = sum(1 for x, y in pts if any(math.hypot(x - a, y - b) <= tol for a, b in refs))
    return hits / len(pts)


def _action_fields(obj: Any) -> dict[str, str]:
    if isinstance(obj, str):
        try:
            obj = json.loads(obj)
        except ValueError:
            return {}
    if isinstance(obj, dict) and isinstance(obj.get("action"), dict):
        obj = obj["action"]
    if not isinstance(obj, dict):
        return {}
    out = {}
    for key in ("type", "name", "skill", "object", "target", "gripper", "then"):
        if obj.get(key) is not None:
            out[key] = normalize_step(str(obj[key]))
    return out


def _action_score(sample: EmbodiedSample, response: str, fmt: bool) -> Score:
    parsed = parsing.parse_action(response, image_size=sample.metadata.get("image_size"),
                                  skills=sample.metadata.get("skills"))
    if isinstance(parsed, NoAnswer):
        return _failed(parsed)
    got = _action_fields(parsing.action_to_json(parsed))
    expected = _action_fields(sample.answer)
    ok = bool(expected) and all(got.get(k) == v for k, v in expected.items())
    return _exact(parsed, ok, fmt, "" if ok else f"expected {expected}, got {got}")


def score_sample(sample: EmbodiedSample, response: str | None, count_metric: str | None = None) -> Score:
    """Score one model response against a sample (see the module docstring for the rule per answer type).

    Never raises on model text. A sample whose scoring region is missing (mask file) raises
    :class:`~dppo_embodied.errors.MediaError`, since that is a data problem, not a model error.

    Args:
        sample: the sample with its oracle answer.
        response: the raw model output (reasoning and tags included).
        count_metric: ``"exact"`` (default) or ``"mra"`` for ``count`` answers; overrides
            ``sample.metadata["count_metric"]``.

    Returns:
        A :class:`Score`.
    """
    t = sample.answer_type
    fmt = format_ok(response)
    if t is AnswerType.MCQ:
        p = parsing.parse_option(response, num_options=len(sample.options), options=sample.options)
        return _failed(p) if isinstance(p, NoAnswer) else _exact(p, p == sample.answer, fmt)
    if t is AnswerType.YES_NO:
        p = parsing.parse_yes_no(response)
        return _failed(p) if isinstance(p, NoAnswer) else _exact(p, p == sample.answer, fmt)
    if t is AnswerType.NUMBER:
        p = parsing.parse_number(response, unit=sample.metadata.get("unit"))
        return _failed(p) if isinstance(p, NoAnswer) else _continuous(mra(p, sample.answer), p, fmt)
    if t is AnswerType.COUNT:
        p = parsing.parse_count(response)
        if isinstance(p, NoAnswer):
            return _failed(p)
        metric = count_metric or sample.metadata.get("count_metric", "exact")
        if metric == "mra":
            return _continuous(mra(p, sample.answer), p, fmt)
        return _exact(p, p == sample.answer, fmt)
    if t is AnswerType.POINTS:
        p = parsing.parse_points(response, image_size=sample.metadata.get("image_size"))
        return _failed(p) if isinstance(p, NoAnswer) else _continuous(_points_score(sample, p), p, fmt)
    if t is AnswerType.BBOX:
        p = parsing.parse_bbox(response, image_size=sample.metadata.get("image_size"))
        return _failed(p) if isinstance(p, NoAnswer) else _continuous(bbox_iou(p, sample.answer), p, fmt)
    if t is AnswerType.SEQUENCE:
        p = parsing.parse_sequence(response, options=sample.options or None)
        return _failed(p) if isinstance(p, NoAnswer) else _continuous(sequence_score(p, sample.answer), p, fmt)
    if t is AnswerType.FREE:
        text = parsing.strip_think(response)
        if not text:
            return Score(0.0, False, None, False, "empty response")
        return _exact(text, normalize_step(text) == normalize_step(str(sample.answer)), fmt)
    if t is AnswerType.ACTION:
        return _action_score(sample, response or "", fmt)
    raise AssertionError(f"unhandled answer type {t}")  # pragma: no cover - AnswerType is closed

