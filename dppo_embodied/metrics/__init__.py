"""Scoring, once, in the torch-free core: the benchmark metric is the RL reward.

* :func:`score_sample` (:mod:`~dppo_embodied.metrics.sample`): a response against an
  :class:`~dppo_embodied.types.EmbodiedSample`, the one definition of success per answer type; the training rewards,
  the teacher's verification and the ``tabletop_qa`` benchmark scorer all call it.
* the primitive metrics (:mod:`~dppo_embodied.metrics.primitives`): :func:`mra`, :func:`points_in_mask`,
  :func:`pixel_points_in_mask`, :func:`point_in_polygon`, :func:`bbox_iou`, :func:`sequence_score`; the official
  benchmark scorers (:mod:`benchmarks.scoring`) import them from here.
* region masks (:mod:`~dppo_embodied.metrics.masks`): :func:`load_mask`, :func:`decode_mask`.

Responses are read with the one think/answer normaliser, :func:`dppo_embodied.answer_text.strip_think`.
"""

from __future__ import annotations

from dppo_embodied.metrics.masks import decode_mask, load_mask
from dppo_embodied.metrics.primitives import (
    MRA_THRESHOLDS,
    bbox_iou,
    mra,
    pixel_points_in_mask,
    point_in_polygon,
    points_in_mask,
    sequence_score,
)
from dppo_embodied.metrics.sample import CONTINUOUS_TYPES, SUCCESS_THRESHOLD, Score, format_ok, score_sample

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
