"""Scorers built on :mod:`dppo_embodied.metrics` (our own data) and the closed-loop success rate."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import ClassVar

from benchmarks.doc import Doc
from benchmarks.scoring.base import Options, Row, SampleScore, Scorer, TaskResult, mean, pct
from dppo_embodied.metrics import score_sample
from dppo_embodied.types import EmbodiedSample


class SampleMetricsScorer(Scorer):
    """Scores a response with :func:`dppo_embodied.metrics.score_sample` against the doc's
    :class:`~dppo_embodied.types.EmbodiedSample` (``doc.target``): the same success definition as the RL rewards.

    The sample score is the metric ``value`` (continuous types give partial credit), or its ``success`` (1/0) with
    ``score: success`` (the metaloop's held-out evaluation); ``details`` also reports the success rate and the
    format rate.

    Options:
        count_metric: ``exact`` (default) or ``mra`` for ``count`` answers.
        score: ``value`` (default) or ``success``.
        aggregation: ``micro`` (default) or ``macro`` over subtasks (answer types / capabilities of the file).
    """

    OPTIONS: ClassVar[Options] = {"count_metric": ("exact", ("exact", "mra")),
                                  "score": ("value", ("value", "success")),
                                  "aggregation": ("micro", ("micro", "macro"))}

    def score(self, doc: Doc, response: str) -> SampleScore:
        sample = doc.target
        if not isinstance(sample, EmbodiedSample):
            raise TypeError(f"doc {doc.id}: target must be an EmbodiedSample for the sample_metrics scorer")
        s = score_sample(sample, response, count_metric=self.options["count_metric"])
        parsed = s.parsed
        try:
            json.dumps(parsed)
        except (TypeError, ValueError):
            parsed = repr(parsed)
        score = float(s.success) if self.options["score"] == "success" else s.value
        return SampleScore(score, parsed, {"success": s.success, "format_ok": s.format_ok, "reason": s.reason})

    def aggregate(self, rows: Sequence[Row]) -> TaskResult:
        res = super().aggregate(rows)
        res.details["success_rate"] = pct(mean([float(bool(r.extra.get("success"))) for r in rows]))
        res.details["format_rate"] = pct(mean([float(bool(r.extra.get("format_ok"))) for r in rows]))
        return res


class ClosedLoopScorer(Scorer):
    """Closed-loop episodes: the "response" is the episode summary JSON written by the closed-loop adapter
    (``{"success": bool, "steps": int, "return": float, ...}``); the score is success (1/0) and the metric the
    success rate over seeds, per env id (subtask)."""

    OPTIONS: ClassVar[Options] = {"aggregation": ("macro", ("macro", "micro"))}
    METRIC = "success_rate"

    def score(self, doc: Doc, response: str) -> SampleScore:
        try:
            ep = json.loads(response)
        except (TypeError, ValueError, RecursionError):  # RecursionError: JSON nested thousands deep
            return SampleScore(0.0, None, {"invalid": "not an episode summary"})
        if not isinstance(ep, dict):
            return SampleScore(0.0, None, {"invalid": "not an episode summary"})
        return SampleScore(float(bool(ep.get("success"))), {k: ep.get(k) for k in ("steps", "return", "invalid")})
