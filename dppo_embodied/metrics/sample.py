"""The one definition of success per answer type: :func:`score_sample` scores a raw model response against an
:class:`~dppo_embodied.types.EmbodiedSample`. The RL rewards call it per completion, the teacher verifies with it,
and the benchmark scorer of our own samples (``tabletop_qa``) is it, so a training reward equals the benchmark
metric. Every response is first reduced with the one think/answer normaliser,
:func:`dppo_embodied.answer_text.strip_think` (inside the parsers), so reasoning is never scored.

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
from dataclasses import dataclass
from typing import Any

from dppo_embodied import parsing
from dppo_embodied.metrics.masks import load_mask
from dppo_embodied.metrics.primitives import bbox_iou, mra, point_in_polygon, points_in_mask, sequence_score
from dppo_embodied.parsing import NoAnswer, normalize_step
from dppo_embodied.types import AnswerType, EmbodiedSample

__all__ = ["CONTINUOUS_TYPES", "SUCCESS_THRESHOLD", "Score", "format_ok", "score_sample"]

#: Answer types scored on a continuous scale (success means value >= 0.5).
CONTINUOUS_TYPES = frozenset({AnswerType.NUMBER, AnswerType.POINTS, AnswerType.BBOX, AnswerType.SEQUENCE})

#: A continuous score counts as a success from this value on (with 1e-9 slack for float rounding: IoU 0.4999...).
SUCCESS_THRESHOLD = 0.5

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

