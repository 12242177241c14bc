"""Finished rollouts of one metaloop step, persisted as they arrive, so ``--resume`` never asks for one twice.

A step's journal is the folder ``<run>/rollouts/<step>/``: every rank appends to its own ``rank<R>.jsonl`` and
reads all of them when the step (re)starts, so a resumed step -- with the same number of ranks or not -- sends only
the requests whose key is missing. A key names one generation: ``<sample id>#<rollout index>`` for a question,
``<sample id>#<rollout index>@<decision>`` for one decision of a closed-loop episode (the episode is replayed from
its journaled decisions, which the env reproduces exactly from its seed). A line is ``{"key", "text"}`` or, for a
rollout that failed for good (the server answered with an error or garbage after the SDK's retries), ``{"key",
"error"}``: a failure is a result too and is not sent again.

The first line of each file records what the rollouts were generated with (``meta``: checkpoint, temperature,
token cap); a file whose ``meta`` differs (another checkpoint after an edited resume) is set aside as
``rank<R>.jsonl.stale-<n>`` and its rollouts are not reused.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from dppo_embodied.io import JsonlWriter, iter_json_lines

logger = logging.getLogger(__name__)


class RolloutJournal:
    """The finished rollouts of one step (module docstring).

    Args:
        folder: ``<run>/rollouts/<step>``.
        rank: this process's rank (its own file).
        meta: what the rollouts are generated with; files recorded with other settings are not reused.
    """

    def __init__(self, folder: Path, rank: int = 0, meta: dict[str, Any] | None = None) -> None:
        self.folder, self.rank, self.meta = Path(folder), rank, dict(meta or {})
        self.done: dict[str, dict[str, Any]] = {}
        self._writer: JsonlWriter | None = None
        self.reused = 0
        for f in sorted(self.folder.glob("rank*.jsonl")):
            self._read(f)

    def _read(self, path: Path) -> None:
        records: dict[str, dict[str, Any]] = {}
        meta: Any = None
        for lineno, rec, err in iter_json_lines(path, require_newline=True):
            if err is not None or not isinstance(rec, dict):
                continue  # a torn last line (killed mid-write) is simply not a result
            if lineno == 1 and "meta" in rec:
                meta = rec["meta"]
            elif "key" in rec:
                records[str(rec["key"])] = rec
        if meta is not None and meta != self.meta:
            n = len(list(path.parent.glob(path.name + ".stale-*")))
            stale = path.with_name(f"{path.name}.stale-{n}")
            logger.warning("%s was generated with %s, not %s: set aside as %s (its %d rollouts are not reused)",
                           path, meta, self.meta, stale.name, len(records))
            path.rename(stale)
            return
        self.done.update(records)

    def __contains__(self, key: object) -> bool:
        return key in self.done

    def __len__(self) -> int:
        return len(self.done)

    def get(self, key: str) -> str | Exception:
        """The journaled text, or a :class:`RolloutFailed` carrying the recorded reason."""
        rec = self.done[key]
        self.reused += 1
        if rec.get("error") is not None:
            return RolloutFailed(str(rec["error"]))
        return str(rec.get("text") or "")

    def record(self, key: str, result: str | Exception) -> None:
        """Append one finished rollout (flushed at once; :meth:`sync` makes it durable)."""
        if self._writer is None:
            path = self.folder / f"rank{self.rank}.jsonl"
            fresh = not path.is_file() or path.stat().st_size == 0
            self._writer = JsonlWriter(path)
            if fresh:
                self._writer.write({"meta": self.meta})
        rec: dict[str, Any] = {"key": key}
        if isinstance(result, Exception):
            rec["error"] = failure_reason(result)
        else:
            rec["text"] = result
        self._writer.write(rec)
        self.done[key] = rec

    def sync(self) -> None:
        """fsync this rank's file."""
        if self._writer is not None:
            self._writer.sync()

    def close(self) -> None:
        """Sync and close (idempotent)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class RolloutFailed(Exception):
    """A rollout that failed for good (its reason is recorded in the journal and the step's results)."""


def failure_reason(error: Exception, limit: int = 300) -> str:
    """One line naming an error: ``<Type>: <message>`` cut to ``limit`` characters."""
    if isinstance(error, RolloutFailed):
        return str(error)[:limit]
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}"[:limit]
