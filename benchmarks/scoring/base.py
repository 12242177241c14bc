"""Scorer interface, result types and the shared aggregation rules.

A scorer turns one raw response into a :class:`SampleScore` (``score`` in [0, 1], or ``None`` when the official
rule excludes the sample from the denominator, e.g. an empty MVBench answer) and aggregates the scored rows of a
task into a :class:`TaskResult` on a 0-100 scale. Scorers are pure functions of ``(doc, response)`` except where
the official rule is stateful (EgoSchema's seeded random fallback): the runner always scores a task's rows in
dataset order on a freshly :meth:`Scorer.reset` scorer, so the numbers do not depend on completion order.

Named variants of the official rule (lmms-eval, VLMEvalKit) are scorer options, declared in
:attr:`Scorer.OPTIONS` and validated on construction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from benchmarks.doc import Doc
from dppo_embodied.errors import ConfigError


@dataclass
class SampleScore:
    """The score of one response.

    Attributes:
        score: in [0, 1]; ``None`` = excluded from the metric by the official rule (reported as excluded).
        parsed: what was extracted from the response (letter, number, points...), JSON-serialisable.
        extra: scorer-specific details (e.g. ``{"needs_judge": True}``).
    """

    score: float | None
    parsed: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Row:
    """One scored sample as aggregation sees it (failed samples have ``failed=True`` and score 0)."""

    id: str
    subtask: str | None
    score: float | None
    failed: bool = False
    meta: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    parsed: Any = None


@dataclass
class TaskResult:
    """Aggregated result of one task, on a 0-100 scale.

    Attributes:
        task: task name.
        metric: metric name (``accuracy``, ``mra_mean``, ``points_in_mask``...).
        overall: the headline number (``None`` when nothing could be scored).
        subtasks: ``<task>_<subtask>`` -> score.
        n: samples; n_scored: samples in the denominator; n_excluded: excluded by the official rule;
        n_failed: failed samples (media/row errors, backend errors), counted as wrong.
        details: extra figures (``valid/total``, per-category scores, submission info...).
    """

    task: str
    metric: str
    overall: float | None
    subtasks: dict[str, float | None] = field(default_factory=dict)
    n: int = 0
    n_scored: int = 0
    n_excluded: int = 0
    n_failed: int = 0
    details: dict[str, Any] = field(default_factory=dict)


def mean(values: Sequence[float]) -> float | None:
    """Arithmetic mean, ``None`` for an empty sequence."""
    return sum(values) / len(values) if values else None


def pct(value: float | None) -> float | None:
    """0-1 -> 0-100 (``None`` stays ``None``)."""
    return None if value is None else 100.0 * value


#: Declared scorer options: name -> (default, allowed values or None for free values).
Options = dict[str, tuple[Any, tuple[Any, ...] | None]]


class Scorer:
    """Base scorer: accuracy-like mean of sample scores, per subtask and overall.

    Args:
        task: the task name (for messages and subtask keys).
        options: option values; unknown keys or values outside the declared choices raise ``ConfigError``.
    """

    #: option name -> (default, allowed values or None for free values).
    OPTIONS: ClassVar[Options] = {"aggregation": ("micro", ("micro", "macro"))}
    METRIC: ClassVar[str] = "accuracy"

    def __init__(self, task: str, options: dict[str, Any] | None = None) -> None:
        self.task = task
        options = dict(options or {})
        unknown = sorted(set(options) - set(self.OPTIONS))
        if unknown:
            raise ConfigError(f"task {task}: unknown scorer option(s) {unknown} for {type(self).__name__}; "
                              f"valid: {', '.join(sorted(self.OPTIONS)) or '(none)'}")
        self.options: dict[str, Any] = {}
        for name, (default, allowed) in self.OPTIONS.items():
            value = options.get(name, default)
            if allowed is not None and value not in allowed:
                raise ConfigError(f"task {task}: scorer option {name}={value!r} is not one of {list(allowed)}")
            self.options[name] = value
        self.reset()

    def reset(self) -> None:
        """Reset any state (called before scoring a task's rows in dataset order)."""

    def score(self, doc: Doc, response: str) -> SampleScore:  # pragma: no cover - abstract
        """Score one raw response."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------------------- aggregation
    def subtask_key(self, subtask: str | None) -> str:
        """``<task>_<subtask>``."""
        return f"{self.task}_{subtask}" if subtask else self.task

    def group_means(self, rows: Sequence[Row], key: str = "subtask") -> dict[str, float | None]:
        """Mean score (0-1) of the included rows per subtask (or per ``meta[key]``), in first-seen order."""
        groups: dict[str, list[float]] = defaultdict(list)
        for r in rows:
            k = r.subtask if key == "subtask" else r.meta.get(key)
            groups.setdefault(str(k), [])
            if r.score is not None:
                groups[str(k)].append(r.score)
        return {k: mean(v) for k, v in groups.items()}

    def aggregate(self, rows: Sequence[Row]) -> TaskResult:
        """Per-subtask means; overall = ``micro`` (all included rows) or ``macro`` (mean of subtask means)."""
        res = self.base_result(rows)
        included = [r.score for r in rows if r.score is not None]
        subs = {self.subtask_key(k): v for k, v in self.group_means(rows).items()} if self._has_subtasks(rows) else {}
        if self.options.get("aggregation") == "macro" and subs:
            overall = mean([v for v in subs.values() if v is not None])
        else:
            overall = mean(included)
        res.overall = pct(overall)
        res.subtasks = {k: pct(v) for k, v in subs.items()}
        return res

    def base_result(self, rows: Sequence[Row]) -> TaskResult:
        """A :class:`TaskResult` with the counts filled in."""
        return TaskResult(
            task=self.task, metric=self.METRIC, overall=None, n=len(rows),
            n_scored=sum(r.score is not None for r in rows),
            n_excluded=sum(r.score is None for r in rows),
            n_failed=sum(r.failed for r in rows),
        )

    @staticmethod
    def _has_subtasks(rows: Sequence[Row]) -> bool:
        return any(r.subtask for r in rows)
