"""Reward functions for TRL's GRPOTrainer: R = λ_f·R_format + λ_t·R_task, both from ``score_sample``.

One definition of success: the task reward is exactly the benchmark metric (``Score.value``: exact match, MRA,
points-in-mask, IoU, LCS ratio...), and the format reward is ``Score.format_ok``. The two are passed to TRL as two
reward functions with ``reward_weights=[λ_f, λ_t]`` so both are logged (``rewards/format/mean``,
``rewards/task/mean``). Closed-loop episodes bring their own reward (:mod:`training.algorithm.env_rollouts`); the QA
rewards return ``None`` for them (TRL then ignores that function for the row).

The dataset carries a ``sample_id`` column (TRL passes every extra column to reward functions); the sample is looked
up in a :class:`SampleIndex`. :class:`RewardRecorder` captures ``(step, sample_id, reward, success)`` per completion
on every rank; the stagnation callback gathers those records to compute per-sample success rates.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dppo_embodied.errors import MediaError
from dppo_embodied.metrics import Score, score_sample
from dppo_embodied.types import AnswerType, EmbodiedSample

logger = logging.getLogger(__name__)


def completion_text(completion: Any) -> str:
    """Text of one TRL completion (conversational ``[{"role": "assistant", "content": ...}]`` or a string)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion:
        content = completion[-1].get("content", "") if isinstance(completion[-1], dict) else completion[-1]
        if isinstance(content, list):
            return "".join(p.get("text", "") for p in content if isinstance(p, dict))
        return str(content)
    return ""


class SampleIndex:
    """``sample_id -> EmbodiedSample`` for reward lookup (every rank builds the same index)."""

    def __init__(self, samples: Iterable[EmbodiedSample] = ()) -> None:
        self._by_id: dict[str, EmbodiedSample] = {}
        self.add(samples)

    def add(self, samples: Iterable[EmbodiedSample]) -> None:
        """Add (or replace) samples."""
        for s in samples:
            self._by_id[s.id] = s

    def get(self, sample_id: str, default: EmbodiedSample | None = None) -> EmbodiedSample | None:
        """The sample with this id, or ``default``."""
        return self._by_id.get(sample_id, default)

    def __getitem__(self, sample_id: str) -> EmbodiedSample:
        return self._by_id[sample_id]

    def __contains__(self, sample_id: object) -> bool:
        return sample_id in self._by_id

    def __len__(self) -> int:
        return len(self._by_id)


def is_episode(sample: EmbodiedSample) -> bool:
    """True for closed-loop episode samples (scored by the environment, not by a single answer)."""
    return bool(sample.metadata.get("env_id"))


class _ScoreCache:
    """Scores shared by the format and task rewards of one batch (each completion is parsed once)."""

    def __init__(self, max_items: int = 50_000) -> None:
        self.max_items = max_items
        self._d: dict[tuple[str, str], Score | None] = {}
        self._lock = threading.Lock()

    def get(self, sample: EmbodiedSample, text: str) -> Score | None:
        key = (sample.id, text)
        with self._lock:
            if key in self._d:
                return self._d[key]
        try:
            score: Score | None = score_sample(sample, text)
        except MediaError as e:  # the sample's scoring region is missing: a data problem, skip the row
            logger.warning("cannot score sample %s: %s", sample.id, e)
            score = None
        with self._lock:
            if len(self._d) >= self.max_items:
                self._d.clear()
            self._d[key] = score
        return score


@dataclass
class RewardRecord:
    """One scored completion: optimizer step, sample id, task reward in [0, 1], success, rank."""

    step: int
    sample_id: str
    reward: float
    success: bool
    rank: int = 0


class RewardRecorder:
    """Captures ``(step, sample_id, reward, success)`` for every completion scored on this rank.

    Records are kept in memory (for the stagnation callback) and appended to ``<folder>/rewards.rank<r>.jsonl``.

    Args:
        folder: where the JSONL goes (None: memory only).
        rank: this process's rank.
    """

    def __init__(self, folder: str | os.PathLike[str] | None = None, rank: int = 0) -> None:
        self.rank = rank
        self.path = Path(folder) / f"rewards.rank{rank}.jsonl" if folder else None
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.records: list[RewardRecord] = []
        self._lock = threading.Lock()

    def record(self, step: int, sample_ids: Sequence[str], rewards: Sequence[float | None],
               successes: Sequence[bool | None]) -> None:
        """Append one batch of records (``None`` rewards are skipped)."""
        new = [RewardRecord(int(step), str(sid), float(r), bool(ok), self.rank)
               for sid, r, ok in zip(sample_ids, rewards, successes, strict=False)
               if r is not None and not math.isnan(r)]
        with self._lock:
            self.records.extend(new)
            if self.path and new:
                with self.path.open("a", encoding="utf-8") as f:
                    for r in new:
                        f.write(json.dumps(r.__dict__) + "\n")

    def since(self, step: int) -> list[RewardRecord]:
        """Records with ``step >= step``."""
        with self._lock:
            return [r for r in self.records if r.step >= step]


class FormatReward:
    """R_f: 1 when the completion is ``[<think>..</think>]<answer>..</answer>`` and the answer parses for its type."""

    __name__ = "format"

    def __init__(self, index: SampleIndex, cache: _ScoreCache | None = None) -> None:
        self.index, self.cache = index, cache or _ScoreCache()

    def __call__(self, prompts: Any = None, completions: Sequence[Any] = (), sample_id: Sequence[str] = (),
                 **kwargs: Any) -> list[float | None]:
        out: list[float | None] = []
        for c, sid in zip(completions, sample_id, strict=False):
            s = self.index.get(sid)
            if s is None or is_episode(s):
                out.append(None)
                continue
            score = self.cache.get(s, completion_text(c))
            out.append(None if score is None else float(score.format_ok))
        return out


class TaskReward:
    """R_t: ``dppo_embodied.metrics.score_sample(sample, completion).value``; records every score by sample id."""

    __name__ = "task"

    def __init__(self, index: SampleIndex, recorder: RewardRecorder | None = None,
                 cache: _ScoreCache | None = None) -> None:
        self.index, self.recorder, self.cache = index, recorder, cache or _ScoreCache()

    def __call__(self, prompts: Any = None, completions: Sequence[Any] = (), sample_id: Sequence[str] = (),
                 trainer_state: Any = None, **kwargs: Any) -> list[float | None]:
        out: list[float | None] = []
        ok: list[bool | None] = []
        for c, sid in zip(completions, sample_id, strict=False):
            s = self.index.get(sid)
            if s is None or is_episode(s):
                out.append(None)
                ok.append(None)
                continue
            score = self.cache.get(s, completion_text(c))
            out.append(None if score is None else float(score.value))
            ok.append(None if score is None else bool(score.success))
        if self.recorder is not None:
            step = int(getattr(trainer_state, "global_step", 0) or 0)
            self.recorder.record(step, list(sample_id), out, ok)
        return out


def qa_rewards(index: SampleIndex, recorder: RewardRecorder | None, lambda_format: float,
               lambda_task: float) -> tuple[list[Any], list[float]]:
    """The two QA reward functions and their TRL ``reward_weights`` ``[λ_f, λ_t]``."""
    cache = _ScoreCache()
    return [FormatReward(index, cache), TaskReward(index, recorder, cache)], [lambda_format, lambda_task]


def success_of(sample: EmbodiedSample, text: str) -> tuple[float, bool, bool]:
    """``(value, success, format_ok)`` of one response (``(0, False, False)`` when the sample cannot be scored)."""
    try:
        s = score_sample(sample, text)
    except MediaError as e:
        logger.warning("cannot score sample %s: %s", sample.id, e)
        return 0.0, False, False
    return float(s.value), bool(s.success), bool(s.format_ok)


__all__ = [
    "AnswerType",
    "FormatReward",
    "RewardRecord",
    "RewardRecorder",
    "SampleIndex",
    "TaskReward",
    "completion_text",
    "is_episode",
    "qa_rewards",
    "success_of",
]
