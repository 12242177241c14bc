"""Pointing and spatial scorers: Where2Place, RefSpatial-Bench, RoboSpatial-Home, VSI-Bench.

Pointing follows RoboPoint's rule as the official evaluation applies it (:mod:`benchmarks.scoring.pointing`):
parenthesised tuples, a 2-tuple with a decimal point is normalised (times the image size), **integers are
pixels**, a 4-tuple is a box (all its pixels), and the score is the mean over points of the mask value / 255 (not
binarised for Where2Place; binarised for RefSpatial), out-of-image points counting 0.

Every regex here runs in linear time on the bounded response (:func:`~dppo_embodied.answer_text.strip_think`),
and a response no rule can read scores 0 (or is excluded where the official rule excludes it), never raises.
"""

from __future__ import annotations

import ast
import math
import os
import re
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from benchmarks.doc import Doc
from benchmarks.scoring.base import Options, Row, SampleScore, Scorer, TaskResult, mean, pct
from benchmarks.scoring.normalize import flageval_normalize, word_to_num
from benchmarks.scoring.pointing import (
    DECIMAL,
    box_region,
    lmms_eval_points,
    mask_accuracy,
    point_array,
    targets_accuracy,
    text_to_targets,
)
from dppo_embodied.answer_text import bounded_text, strip_think
from dppo_embodied.metrics import decode_mask, load_mask, mra, point_in_polygon


def _mask_array(ref: Any) -> np.ndarray:
    """A ``(H, W)`` uint8 mask from a path (cached), encoded bytes, a PIL image or an array."""
    if isinstance(ref, (str, os.PathLike)):
        return load_mask(ref)
    return decode_mask(ref)


class Where2PlaceScorer(Scorer):
    """Where2Place: fraction of predicted points inside the free-space mask (continuous JPEG mask values).

    Options:
        mode: ``pelican`` (default: "(x, y)" and "[x, y]" tuples at 640 x 480, integers are pixels; an answer
            that cannot be parsed is invalid and excluded, reported as valid/total), ``robopoint`` (RoboPoint's
            ``summarize_vqa.py``: parenthesised tuples only; failures score 0) or ``lmms_eval`` (lmms-eval's
            ``original``: integers read as normalised, mask rounded to {0, 1}).
    """

    OPTIONS: ClassVar[Options] = {"mode": ("pelican", ("pelican", "robopoint", "lmms_eval"))}
    METRIC = "points_in_mask"

    def score(self, doc: Doc, response: str) -> SampleScore:
        mode = self.options["mode"]
        pred = strip_think(response) if mode == "pelican" else bounded_text(response)
        mask = _mask_array(doc.target) / 255.0
        w, h = doc.meta.get("image_size", (640, 480))
        try:
            if mode == "lmms_eval":
                pts = lmms_eval_points(pred, w, h)
                return SampleScore(mask_accuracy(pts, np.round(mask)), pts.tolist())
            targets = text_to_targets(pred, w, h, "pelican" if mode == "pelican" else "paren")
            return SampleScore(targets_accuracy(targets, mask, (w, h)), [list(t) for t in targets])
        except (ValueError, IndexError, TypeError) as e:
            return SampleScore(None if mode == "pelican" else 0.0, None, {"invalid": str(e)})

    def aggregate(self, rows: Sequence[Row]) -> TaskResult:
        res = super().aggregate(rows)
        res.details["valid/total"] = f"{res.n_scored}/{res.n}"
        return res


class RefSpatialScorer(Scorer):
    """RefSpatial-Bench: fraction of points in the **binarised** mask; overall = micro mean over valid answers,
    plus one score per split (location / placement / unseen).

    Options:
        mode: ``pelican`` (default: RoboPoint parsing with the mask's size, integers are pixels; unparsable ->
            excluded), ``lmms_eval`` (integers read as normalised) or ``vlmevalkit`` (``RefSpatialDataset``: 1 if
            **any** point is in the mask, points clipped into the image).
    """

    OPTIONS: ClassVar[Options] = {"mode": ("pelican", ("pelican", "lmms_eval", "vlmevalkit"))}
    METRIC = "points_in_mask"

    def score(self, doc: Doc, response: str) -> SampleScore:
        pred = strip_think(response)
        mask = (_mask_array(doc.target) > 0).astype(np.uint8)
        h, w = mask.shape
        mode = self.options["mode"]
        try:
            if mode == "lmms_eval":
                pts = lmms_eval_points(pred, w, h)
                return SampleScore(mask_accuracy(pts, mask), pts.tolist())
            targets = text_to_targets(pred, w, h)
            parsed = [list(t) for t in targets]
            if mode == "vlmevalkit":  # any point (clipped into the image) or any box pixel in the mask
                pts = point_array(targets)
                hit = len(pts) > 0 and bool(mask[np.clip(pts[:, 1], 0, h - 1), np.clip(pts[:, 0], 0, w - 1)].any())
                hit = hit or any(r.any() for r, _ in (box_region(mask, t, (w, h)) for t in targets if len(t) == 4))
                return SampleScore(float(hit), parsed)
            return SampleScore(targets_accuracy(targets, mask), parsed)
        except (ValueError, IndexError, TypeError) as e:
            return SampleScore(None if mode == "pelican" else 0.0, None, {"invalid": str(e)})

    def aggregate(self, rows: Sequence[Row]) -> TaskResult:
        res = super().aggregate(rows)
        res.details["valid/total"] = f"{res.n_scored}/{res.n}"
        return res


# ------------------------------------------------------------------------------------------ RoboSpatial-Home
def robospatial_point_in_polygon(x: float, y: float, poly: Sequence[Sequence[float]]) -> bool:
    """The official RoboSpatial ray casting, quirk included: a vertical edge at the point's height always flips."""
    inside = False
    n = len(poly)
    x1, y1 = poly[0]
    for i in range(1, n + 1):
        x2, y2 = poly[i % n]
        if y > min(y1, y2) and y <= max(y1, y2):
            cross = (y - y1) * (x2 - x1) / (y2 - y1) + x1 if y1 != y2 else x1
            if x1 == x2 or x <= cross:
                inside = not inside
        x1, y1 = x2, y2
    return inside


# the official r"\d+\.?\d*" written unambiguously (same strings, linear on long digit runs)
_RS_NUM = r"(\d+(?:\.\d*)?)"
_RS_TUPLE = re.compile(rf"\(\s*{_RS_NUM}\s*,\s*{_RS_NUM}\s*\)")
_RS_LIST = re.compile(rf"\[\s*{_RS_NUM}\s*,\s*{_RS_NUM}\s*\]")
_RS_COMMA = re.compile(r",(\S)")


def _first_bracketed(text: str) -> str | None:
    r"""The content of the official ``re.search(r"\[(.*?)\]", text, re.S)`` in linear time (the regex restarts
    its lazy scan at every "[": "[" x 100,000 took > 20 s). The first "[" with a "]" after it is the first "[",
    if any "]" follows it; its content runs to that "]"."""
    i = text.find("[")
    j = text.find("]", i + 1) if i >= 0 else -1
    return text[i + 1: j] if j >= 0 else None


LITERAL_MAX_CHARS = 16_384
"""The longest first-bracket content RoboSpatial reads as a Python literal (``ast.literal_eval`` needs ~440 bytes
of memory per character: 112 MB for a 256 kB list)."""


def robospatial_first_point(answer: str) -> tuple[float, float] | None:
    """The first point of an answer, by the official order: "(x, y)", then "[x, y]", then the first list.

    The list is read with ``ast.literal_eval`` only when its content is at most :data:`LITERAL_MAX_CHARS`
    characters; a longer one is unparsable (``None``). It is reached only by an answer without any plain
    "(x, y)" or "[x, y]" pair, so this changes nothing for a list of points a model writes.
    """
    for pat in (_RS_TUPLE, _RS_LIST):
        m = pat.search(answer)
        if m:
            return float(m.group(1)), float(m.group(2))
    inner = _first_bracketed(answer)
    if inner is None:
        return None
    content = _RS_COMMA.sub(r", \1", inner).strip()
    content = content[:-1] if content.endswith(",") else content
    if len(content) > LITERAL_MAX_CHARS:  # degenerate: read as unparsable (no literal_eval over 100 MB)
        return None
    try:
        val = ast.literal_eval("[" + content + "]")
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
        t = _RS_TUPLE.search(content)
        return (float(t.group(1)), float(t.group(2))) if t else None
    try:
        if isinstance(val, list) and val:
            if len(val) == 2 and all(isinstance(v, (int, float)) for v in val):
                pt = tuple(val)
            elif isinstance(val[0], tuple):
                pt = val[0]
            elif isinstance(val[0], list) and len(val[0]) == 2:
                pt = tuple(val[0])
            else:
                return None
            if len(pt) == 2:
                return float(pt[0]), float(pt[1])
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer of 400 digits is no coordinate
        return None
    return None


_VLM_PAIR = re.compile(rf"[\[(]\s*({DECIMAL})\s*,\s*({DECIMAL})\s*[\])]")


def _vlmevalkit_point(text: str, size: tuple[float, float] | None) -> tuple[float, float] | None:
    """VLMEvalKit ``Point2DParser`` scale heuristic on the first pair: <= 1.5 normalised, <= 1000 per mille,
    else pixels."""
    m = _VLM_PAIR.search(text)
    if not m:
        return None
    x, y = float(m.group(1)), float(m.group(2))
    big = max(abs(x), abs(y))
    if big <= 1.5:
        return x, y
    if big <= 1000 or not size:
        return x / 1000, y / 1000
    return x / size[0], y / size[1]


class RoboSpatialScorer(Scorer):
    """RoboSpatial-Home: only the last line of the answer is scored (after FlagEval normalisation); yes/no must
    start with the ground truth; context answers score 1 when their **first** point lies in the ground-truth
    polygon (normalised, official ray casting). Overall = micro accuracy, plus one per split.

    Options:
        mode: ``pelican`` (default) or ``vlmevalkit`` (yes/no on the whole response; first point with the
            ``Point2DParser`` scale heuristic; standard even-odd polygon test).
    """

    OPTIONS: ClassVar[Options] = {"mode": ("pelican", ("pelican", "vlmevalkit"))}

    def score(self, doc: Doc, response: str) -> SampleScore:
        gt = str(doc.target).strip()
        if self.options["mode"] == "vlmevalkit":
            text = strip_think(response).strip().lower()
            if gt.lower() in ("yes", "no"):
                return SampleScore(float(text.startswith(gt.lower())), text[:3])
            pt = _vlmevalkit_point(text, doc.meta.get("image_size"))
            poly = _polygon(gt)
            return SampleScore(float(pt is not None and poly is not None and point_in_polygon(*pt, poly)), pt)
        pred = flageval_normalize(strip_think(response).strip().rpartition("\n")[2])
        low = pred.strip().lower()
        if gt.lower() in ("yes", "no"):
            return SampleScore(float(low.startswith(gt.lower())), low)
        poly = _polygon(gt)
        if poly is None:
            return SampleScore(0.0, None, {"invalid": "ground-truth polygon has fewer than 3 points"})
        pt = robospatial_first_point(pred)
        if pt is None:
            return SampleScore(0.0, None)
        return SampleScore(float(robospatial_point_in_polygon(pt[0], pt[1], poly)), list(pt))

    def aggregate(self, rows: Sequence[Row]) -> TaskResult:
        return super().aggregate(rows)


def _polygon(gt: Any) -> list[tuple[float, float]] | None:
    try:
        poly = ast.literal_eval(gt) if isinstance(gt, str) else gt
    except (SyntaxError, ValueError):
        return None
    if not isinstance(poly, (list, tuple)) or len(poly) < 3:
        return None
    return [(float(p[0]), float(p[1])) for p in poly]


# ----------------------------------------------------------------------------------------------- VSI-Bench
MCA_TYPES = ("object_rel_direction_easy", "object_rel_direction_medium", "object_rel_direction_hard",
             "object_rel_distance", "route_planning", "obj_appearance_order")
NA_TYPES = ("object_abs_distance", "object_counting", "object_size_estimation", "room_size_estimation")
_VSI_NUM = re.compile(r"[+-]?\d+(?:\.\d+)?")


def _to_float(text: Any) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        try:
            return float(word_to_num(str(text)))
        except Exception:
            return None


class VSIBenchScorer(Scorer):
    """VSI-Bench: multiple choice = the text before the first space (trailing "." removed) equals the letter;
    numeric = :func:`~dppo_embodied.metrics.mra` of the first number (number words via word2number); per question
    type means, the three ``object_rel_direction`` difficulties averaged into one task, and overall = the
    **unweighted** mean of the (8) task scores.

    Options:
        numeric: ``first`` (default, official) or ``last`` (VLMEvalKit: the last number of the answer).
    """

    OPTIONS: ClassVar[Options] = {"numeric": ("first", ("first", "last"))}
    METRIC = "vsi_score"

    def score(self, doc: Doc, response: str) -> SampleScore:
        pred = strip_think(response)
        qtype = doc.meta.get("question_type")
        if qtype in MCA_TYPES:
            words = pred.split(maxsplit=1)
            choice = words[0].rstrip(".").strip() if words else ""
            return SampleScore(float(choice.lower() == str(doc.target).lower()), choice)
        nums = _VSI_NUM.findall(pred) if pred else []
        if self.options["numeric"] == "last" and nums:
            token: str = nums[-1]
        else:
            token = nums[0] if nums else pred
        value, gt = _to_float(token), _to_float(doc.target)
        if value is None or gt is None or gt == 0 or not math.isfinite(value):
            return SampleScore(0.0, value)
        return SampleScore(mra(value, gt), value)

    def aggregate(self, rows: Sequence[Row]) -> TaskResult:
        res = self.base_result(rows)
        per_type = {k: v for k, v in self.group_means(rows, "question_type").items() if v is not None}
        direction = [per_type.pop(k) for k in MCA_TYPES[:3] if k in per_type]
        if direction:
            per_type["object_rel_direction"] = sum(direction) / len(direction)
        res.subtasks = {f"{self.task}_{k}": pct(v) for k, v in per_type.items()}
        res.overall = pct(mean(list(per_type.values()))) if direction else None
        res.details["n_tasks"] = len(per_type)
        return res
