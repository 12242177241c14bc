"""The primitive metrics of the Pelican benchmarks, shared by :func:`dppo_embodied.metrics.score_sample` (hence the
RL rewards) and the official benchmark scorers (:mod:`benchmarks.scoring`): VSI-Bench's mean relative accuracy,
RoboPoint's points-in-mask, point in polygon, box IoU and the plan-similarity LCS ratio.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from dppo_embodied.parsing import normalize_step

__all__ = ["MRA_THRESHOLDS", "bbox_iou", "mra", "pixel_points_in_mask", "point_in_polygon", "points_in_mask",
           "sequence_score"]

#: VSI-Bench's 10 MRA tolerances ``1 - theta`` for theta in 0.50, 0.55, ..., 0.95, computed exactly as the
#: official code does (``np.linspace(0.5, 0.95, int((0.95 - 0.5) / 0.05 + 2))``; float rounding makes it 10).
MRA_THRESHOLDS: tuple[float, ...] = tuple(float(1 - t) for t in np.linspace(0.5, 0.95, int((0.95 - 0.5) / 0.05 + 2)))


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
