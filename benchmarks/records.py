"""The per-sample log ``OUT/<task>/samples.jsonl``: append-and-flush writing, torn-line tolerant reading.

Each line is one JSON record ``{id, task, subtask, prompt, response, parsed, score, capabilities, error, ...}``.
While a run is going, records are appended and flushed as samples finish (``fsync`` after every chunk), so a
``kill -9`` loses at most the line being written. :func:`read_records` skips a torn or corrupt line and keeps
the **last** record of an id; :class:`RecordWriter` first cuts a torn tail so the next append starts on a fresh
line. When a task finishes, the file is rewritten atomically in dataset order with the final scores.

The file I/O is the core's (:mod:`dppo_embodied.io`): :class:`RecordWriter` is its
:class:`~dppo_embodied.io.JsonlWriter` and :func:`write_records_atomic` its
:func:`~dppo_embodied.io.atomic_write_jsonl`; this module adds the samples-log reading rule.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from dppo_embodied.io import JsonlWriter, atomic_write_jsonl, iter_json_lines, to_jsonable

__all__ = ["RecordWriter", "read_records", "to_jsonable", "write_records_atomic"]

logger = logging.getLogger(__name__)

RecordWriter = JsonlWriter
"""Appends records to a samples file, one flushed line each; ``sync()`` fsyncs (call per chunk)."""

write_records_atomic = atomic_write_jsonl
"""Rewrite a samples file atomically (temp file + fsync + rename). Returns the number of records."""


def read_records(path: Path) -> dict[str, dict[str, Any]]:
    """Records of a samples file by id (the last complete record of an id wins); torn or corrupt lines skipped."""
    out: dict[str, dict[str, Any]] = {}
    if not path.is_file():
        return out
    bad = 0
    for _, rec, err in iter_json_lines(path, require_newline=True):
        if err is not None:
            bad += 1
        elif isinstance(rec, dict) and isinstance(rec.get("id"), str):
            out[rec["id"]] = rec
    if bad:
        logger.warning("%s: skipped %d torn or corrupt line(s); those samples will be run again", path, bad)
    return out
