"""Shared data types: :class:`EmbodiedSample` and its JSONL round trip.

A sample is one embodied question with an oracle answer. Media paths are stored as written; when a JSONL file is
loaded, relative paths are resolved against the file's folder, and :func:`write_samples` writes paths relative to
the output folder when they lie inside it, so a dataset folder can be moved as a whole.

Answer encoding by ``answer_type``:

========== ==========================================================================
mcq        option letter ``"B"`` (``options`` holds the option texts, A first)
yes_no     ``"yes"`` or ``"no"``
number     float (units in ``metadata["unit"]``, e.g. ``"cm"``)
count      int
points     list of normalized ``[x, y]`` example points; the scoring region is the mask
           at ``metadata["mask"]`` (or the polygon at ``metadata["polygon"]``)
bbox       normalized ``[x0, y0, x1, y1]``
sequence   list of step strings
free       str
action     the JSON action envelope as a dict (see :mod:`dppo_embodied.parsing`)
========== ==========================================================================
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any

from dppo_embodied.errors import DataError
from dppo_embodied.io import append_jsonl, atomic_write_jsonl, iter_json_lines
from dppo_embodied.taxonomy import validate_capabilities


class AnswerType(str, Enum):
    """How an answer is written and scored."""

    MCQ = "mcq"
    YES_NO = "yes_no"
    NUMBER = "number"
    COUNT = "count"
    POINTS = "points"
    BBOX = "bbox"
    SEQUENCE = "sequence"
    FREE = "free"
    ACTION = "action"


@dataclass
class VideoRef:
    """A video clip: ``path`` plus optional fps, ``start``/``end`` bounds (seconds) and frame count."""

    path: str
    fps: float | None = None
    start: float | None = None
    end: float | None = None
    num_frames: int | None = None

    @property
    def duration_s(self) -> float | None:
        """Clip length in seconds when it can be derived, else None."""
        if self.start is not None and self.end is not None:
            return self.end - self.start
        if self.fps and self.num_frames:
            return self.num_frames / self.fps
        return None


@dataclass
class EmbodiedSample:
    """One embodied question with its oracle answer.

    Attributes:
        id: unique, stable id (e.g. ``"tabletop-qa/spatial/000123"``).
        source: the generator or dataset it came from.
        question: the question text as shown to the model (without the options).
        answer: the oracle answer, encoded per ``answer_type`` (module docstring).
        answer_type: an :class:`AnswerType`.
        images: image paths (frames of a clip are listed here in order when there is no video file).
        video: optional :class:`VideoRef`.
        options: option texts for ``mcq`` (letters are implicit: A, B, ...).
        capabilities: capability slugs from :mod:`dppo_embodied.taxonomy`.
        reasoning: optional oracle chain of thought, true by construction.
        metadata: free-form extras (``image_size`` as ``[W, H]``, ``mask``, ``horizon_s``, ``unit``, ...).
    """

    id: str
    source: str
    question: str
    answer: Any
    answer_type: AnswerType
    images: list[str] = field(default_factory=list)
    video: VideoRef | None = None
    options: list[str] = field(default_factory=list)
    capabilities: list[str] = field(default_factory=list)
    reasoning: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise DataError(f"sample id must be a non-empty string, got {self.id!r}")
        try:
            self.answer_type = AnswerType(self.answer_type)
        except ValueError as e:
            valid = ", ".join(t.value for t in AnswerType)
            raise DataError(f"sample {self.id}: unknown answer_type {self.answer_type!r}; valid: {valid}") from e
        if isinstance(self.video, dict):
            self.video = VideoRef(**self.video)
        self.capabilities = validate_capabilities(self.capabilities)
        _check_answer(self)

    # -- convenience -------------------------------------------------------------------------------------------
    @property
    def option_letters(self) -> list[str]:
        """Letters of the options, ``["A", "B", ...]``."""
        return [chr(ord("A") + i) for i in range(len(self.options))]

    @property
    def horizon_s(self) -> float | None:
        """Temporal horizon in seconds (clip length), used by the metaloop's horizon filter."""
        if "horizon_s" in self.metadata:
            return float(self.metadata["horizon_s"])
        return self.video.duration_s if self.video else None

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dict (enums as strings)."""
        d = asdict(self)
        d["answer_type"] = self.answer_type.value
        if self.video is None:
            d["video"] = None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EmbodiedSample:
        """Inverse of :meth:`to_dict`. Raises :class:`DataError` on unknown or missing keys."""
        if not isinstance(d, dict):
            raise DataError(f"a sample must be a JSON object, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise DataError(f"unknown sample field(s) {unknown}; valid: {sorted(known)}")
        missing = [k for k in ("id", "source", "question", "answer", "answer_type") if k not in d]
        if missing:
            raise DataError(f"sample is missing required field(s) {missing}")
        _check_json_types(d)
        return cls(**d)


_JSON_TYPES: dict[str, tuple[type, str]] = {
    "id": (str, "a string"), "source": (str, "a string"), "question": (str, "a string"),
    "metadata": (dict, "an object"), "video": (dict, "an object or null"), "reasoning": (str, "a string or null"),
}


def _check_json_types(d: dict[str, Any]) -> None:
    """Field types of a sample read from JSON (constructor callers are typed; JSON rows are not)."""
    for key, (typ, what) in _JSON_TYPES.items():
        if key in d and d[key] is not None and not isinstance(d[key], typ):
            raise DataError(f"sample field {key!r} must be {what}, got {type(d[key]).__name__}")
    for key in ("images", "options", "capabilities"):
        if key in d and not (isinstance(d[key], list) and all(isinstance(x, str) for x in d[key])):
            raise DataError(f"sample field {key!r} must be a list of strings, got {d[key]!r:.80}")


def _check_answer(s: EmbodiedSample) -> None:
    t, a = s.answer_type, s.answer
    bad = None
    if t is AnswerType.MCQ:
        if not s.options:
            bad = "mcq needs options"
        elif not (isinstance(a, str) and a in s.option_letters):
            bad = f"mcq answer must be one of {s.option_letters}"
    elif t is AnswerType.YES_NO and a not in ("yes", "no"):
        bad = "yes_no answer must be 'yes' or 'no'"
    elif t is AnswerType.NUMBER and not (
        isinstance(a, (int, float)) and not isinstance(a, bool) and math.isfinite(a)
    ):
        bad = "number answer must be a finite number"
    elif t is AnswerType.COUNT and not (isinstance(a, int) and not isinstance(a, bool) and a >= 0):
        bad = "count answer must be a non-negative integer"
    elif t is AnswerType.POINTS and not (
        isinstance(a, list) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in a)
    ):
        bad = "points answer must be a list of [x, y] pairs"
    elif t is AnswerType.BBOX and not (isinstance(a, (list, tuple)) and len(a) == 4):
        bad = "bbox answer must be [x0, y0, x1, y1]"
    elif t is AnswerType.SEQUENCE and not (isinstance(a, list) and all(isinstance(x, str) for x in a)):
        bad = "sequence answer must be a list of strings"
    if bad:
        raise DataError(f"sample {s.id}: {bad}, got {a!r}")


def format_answer(sample: EmbodiedSample) -> str:
    """Canonical answer text (what SFT targets contain inside ``<answer>...</answer>``).

    The text is what :mod:`dppo_embodied.parsing` parses back to ``sample.answer``.
    """
    t, a = sample.answer_type, sample.answer
    if t is AnswerType.POINTS:
        return "[" + ", ".join(f"({x:.2f}, {y:.2f})" for x, y in a) + "]"
    if t is AnswerType.BBOX:
        return "[" + ", ".join(f"{v:.2f}" for v in a) + "]"
    if t is AnswerType.SEQUENCE:
        return "\n".join(f"{i + 1}. {step}" for i, step in enumerate(a))
    if t is AnswerType.NUMBER:
        return f"{a:g}"
    if t is AnswerType.ACTION:
        return a if isinstance(a, str) else json.dumps(a, separators=(", ", ": "))
    return str(a)


# -- JSONL ---------------------------------------------------------------------------------------------------------
def _resolve(p: str, base: Path) -> str:
    return p if os.path.isabs(p) else str((base / p).resolve())


def resolve_media_paths(sample: EmbodiedSample, base: str | os.PathLike[str]) -> EmbodiedSample:
    """Make the sample's relative media paths (images, video, mask) absolute against ``base``, in place."""
    base = Path(base)
    sample.images = [_resolve(p, base) for p in sample.images]
    if sample.video is not None:
        sample.video.path = _resolve(sample.video.path, base)
    if isinstance(sample.metadata.get("mask"), str):
        sample.metadata["mask"] = _resolve(sample.metadata["mask"], base)
    return sample


def _relativize(p: str, base: Path) -> str:
    try:
        return str(Path(p).resolve().relative_to(base.resolve()))
    except ValueError:
        return p


def iter_sample_rows(path: str | os.PathLike[str], resolve_paths: bool = True
                     ) -> Iterator[tuple[int, EmbodiedSample | None, str | None]]:
    """Yield ``(lineno, sample, error)`` for every non-empty line of a samples file, never stopping at a bad row.

    ``error`` (set when ``sample`` is ``None``) names the file and the 1-based line and says what is wrong.

    Raises:
        DataError: the file is missing or cannot be opened.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such samples file")
    for lineno, value, err in iter_json_lines(path):
        if err is None:
            try:
                s = EmbodiedSample.from_dict(value)
                if resolve_paths:
                    resolve_media_paths(s, path.parent)
            except (DataError, ValueError, TypeError, AttributeError, KeyError) as e:  # a field of the wrong type
                err = f"{type(e).__name__}: {e}"
            else:
                yield lineno, s, None
                continue
        yield lineno, None, f"{path}:{lineno}: malformed sample row: {err}"


def iter_samples(path: str | os.PathLike[str], resolve_paths: bool = True) -> Iterator[EmbodiedSample]:
    """Yield the samples of a JSONL file, one per non-empty line.

    Raises:
        DataError: on the first malformed row, naming the file and the 1-based line number. Rows are never
            silently dropped; callers that want to skip bad rows use :func:`load_samples` with ``on_error``.
    """
    for _, s, err in iter_sample_rows(path, resolve_paths):
        if s is None:
            raise DataError(err)
        yield s


def load_samples(
    path: str | os.PathLike[str], resolve_paths: bool = True, on_error: str = "raise"
) -> tuple[list[EmbodiedSample], list[str]]:
    """Load a whole JSONL file.

    Args:
        path: the JSONL file.
        resolve_paths: resolve relative media paths against the file's folder.
        on_error: ``"raise"`` (default) or ``"collect"``: bad rows are returned as error strings, never dropped
            silently.

    Returns:
        ``(samples, errors)``; ``errors`` is empty with ``on_error="raise"``.
    """
    if on_error not in ("raise", "collect"):
        raise ValueError(f"on_error must be 'raise' or 'collect', got {on_error!r}")
    samples: list[EmbodiedSample] = []
    errors: list[str] = []
    for _, s, err in iter_sample_rows(path, resolve_paths):
        if s is not None:
            samples.append(s)
        elif on_error == "raise":
            raise DataError(err)
        else:
            errors.append(str(err))
    return samples, errors


def write_samples(samples: Iterable[EmbodiedSample], path: str | os.PathLike[str], append: bool = False) -> int:
    """Write samples as JSONL (atomically unless appending; appends are fsynced). Media paths inside the file's
    folder become relative.

    Returns:
        The number of rows written.
    """
    path = Path(path)
    base = path.parent

    def rows() -> Iterator[dict[str, Any]]:
        for s in samples:
            d = s.to_dict()
            d["images"] = [_relativize(p, base) for p in s.images]
            if s.video is not None:
                d["video"]["path"] = _relativize(s.video.path, base)
            if isinstance(d["metadata"].get("mask"), str):
                d["metadata"]["mask"] = _relativize(d["metadata"]["mask"], base)
            yield d

    return append_jsonl(path, rows()) if append else atomic_write_jsonl(path, rows())
