"""The per-sample log ``OUT/<task>/samples.jsonl``: append-and-flush writing, torn-line tolerant reading.

Each line is one JSON record ``{id, task, subtask, prompt, response, parsed, score, capabilities, error, ...}``.
While a run is going, records are appended and flushed as samples finish (``fsync`` after every chunk), so a
``kill -9`` loses at most the line being written. :func:`read_records` skips a torn or corrupt line and keeps
the **last** record of an id; :class:`RecordWriter` first cuts a torn tail so the next append starts on a fresh
line. When a task finishes, the file is rewritten atomically in dataset order with the final scores.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def to_jsonable(value: Any) -> Any:
    """A JSON-safe version of ``value`` (tuples -> lists, numpy scalars -> numbers, NaN/infinity -> "nan"/"inf",
    other objects -> repr)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", 1) == 0:
        return item()
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return to_jsonable(tolist())
    return repr(value)


def dumps(record: dict[str, Any]) -> str:
    """One JSONL line (no trailing newline) that encodes as UTF-8: text with a lone surrogate (a response read
    from a ``\\ud800`` JSON escape) is written ASCII-escaped, which reads back identical."""
    try:
        line = json.dumps(record, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        record = to_jsonable(record)
        line = json.dumps(record, ensure_ascii=False, allow_nan=False, default=repr)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = json.dumps(record, ensure_ascii=True, allow_nan=False, default=repr)
    return line


def read_records(path: Path) -> dict[str, dict[str, Any]]:
    """Records of a samples file by id (the last complete record of an id wins); torn or corrupt lines skipped."""
    out: dict[str, dict[str, Any]] = {}
    if not path.is_file():
        return out
    bad = 0
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.endswith("\n"):
                bad += 1  # a torn last line (killed while writing)
                continue
            try:
                rec = json.loads(line)
            except (ValueError, RecursionError):
                bad += int(bool(line.strip()))
                continue
            if isinstance(rec, dict) and isinstance(rec.get("id"), str):
                out[rec["id"]] = rec
    if bad:
        logger.warning("%s: skipped %d torn or corrupt line(s); those samples will be run again", path, bad)
    return out


def _cut_torn_tail(path: Path) -> None:
    """Truncate the file after its last newline (drops a half-written last line)."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with path.open("rb+") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        block = 4096
        pos = size
        while pos > 0:
            step = min(block, pos)
            f.seek(pos - step)
            chunk = f.read(step)
            i = chunk.rfind(b"\n")
            if i >= 0:
                end = pos - step + i + 1
                if end != size:
                    f.truncate(end)
                return
            pos -= step
        f.truncate(0)


class RecordWriter:
    """Appends records to a samples file, one flushed line each; :meth:`sync` fsyncs (call per chunk)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        _cut_torn_tail(path)
        self.path = path
        self._f = path.open("a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        """Append one record and flush it to the OS."""
        self._f.write(dumps(record) + "\n")
        self._f.flush()

    def sync(self) -> None:
        """fsync the file (durability across power loss; a killed process loses nothing flushed)."""
        os.fsync(self._f.fileno())

    def close(self) -> None:
        """Sync and close."""
        if not self._f.closed:
            self.sync()
            self._f.close()

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_records_atomic(path: Path, records: Iterable[dict[str, Any]]) -> int:
    """Rewrite a samples file atomically (temp file + fsync + rename). Returns the number of records."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    n = 0
    with tmp.open("w", encoding="utf-8") as f:
        for rec in records:
            f.write(dumps(rec) + "\n")
            n += 1
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return n
