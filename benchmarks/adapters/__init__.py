"""Benchmark adapters: one module per benchmark, each exposing ``load(spec, root, subtasks) -> list[Doc]``.

An adapter reads the dataset folder laid out as the dataset's Hugging Face snapshot (see each task YAML's
``layout``), builds the exact official prompt and the scoring target, and never decodes media. Rows become docs
through :func:`build_docs`, the one guard for building: a malformed row (a line that does not parse, a missing
key, a value of the wrong type, anything that raises) becomes a :class:`~benchmarks.doc.Doc` with ``error`` set,
recorded as a failed sample, and the rest of the task goes on. A missing folder or file raises
:class:`~benchmarks.data.DatasetLayoutError` naming the expected layout: that stops the run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from benchmarks.data import DatasetLayoutError, MalformedRow
from benchmarks.doc import Doc
from benchmarks.task import TaskSpec

logger = logging.getLogger(__name__)

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def make_doc(spec: TaskSpec, doc_id: str, prompt: str, target: Any, subtask: str | None = None,
             **kw: Any) -> Doc:
    """A :class:`Doc` with the task's capabilities filled in."""
    meta = kw.pop("meta", {}) or {}
    caps = kw.pop("capabilities", None)
    return Doc(id=doc_id, task=spec.task, prompt=prompt, target=target, subtask=subtask, meta=meta,
               capabilities=caps if caps is not None else spec.capabilities_of(subtask, meta),
               system=kw.pop("system", spec.prompt.system), **kw)


def failed_doc(spec: TaskSpec, doc_id: str, reason: str, subtask: str | None = None) -> Doc:
    """A doc for a malformed row: the runner records it as failed with ``reason``."""
    return Doc(id=doc_id, task=spec.task, prompt="", subtask=subtask, error=reason,
               capabilities=spec.capabilities_of(subtask))


def want(subtasks: tuple[str, ...] | None, name: str) -> bool:
    """Whether subtask ``name`` is selected (``None`` selects all)."""
    return subtasks is None or name in subtasks


def option_letter(index: Any, n_options: int) -> str:
    """The letter of a 0-based answer index (``int(index)``) among ``n_options``; out of range raises."""
    k = int(index)
    if not 0 <= k < min(n_options, len(LETTERS)):
        raise ValueError(f"answer index {index!r} is not one of the {n_options} options")
    return LETTERS[k]


def row_id(row: Any, key: str, fallback: str) -> str:
    """The id contract: the dataset's own id ``row[key]`` (unique across the task) when the row has one, else
    ``fallback`` = ``<subset>/<row>`` (subset = source file stem, or config/split name for parquet; 0-based row)."""
    value = row.get(key) if isinstance(row, dict) else None
    return fallback if value is None or value == "" else str(value)


def seconds(value: Any) -> float | None:
    """A clip bound in seconds from a dataset cell (``None`` when absent); a non-number raises (a malformed row)."""
    return None if value is None else float(value)


def build_docs(spec: TaskSpec, rows: Iterable[Any], build: Callable[[int, Any, str], Doc | None],
               id_of: Callable[[int, Any], Any], where: str, subtask: str | None = None,
               subtask_of: Callable[[Any], str | None] | None = None, source: str | None = None) -> list[Doc]:
    """Build one doc per row, each under its own guard.

    Args:
        spec: the task.
        rows: dataset rows (dicts, or :class:`~benchmarks.data.MalformedRow` for lines that did not parse).
        build: ``build(index, row, doc_id)`` -> the doc, or ``None`` to skip the row (not selected); raising
            anything but :class:`~benchmarks.data.DatasetLayoutError` makes the row a failed doc with the reason.
        id_of: ``id_of(index, row)`` -> the row's id; ``<where>/<index>`` when it raises (e.g. a row that is not
            an object).
        where: the id prefix of rows without an id (subset, split or file stem).
        subtask: the subtask of every row (failed ones included).
        subtask_of: or the subtask of each row (for failed rows; ``None`` when it raises).
        source: what the reasons name (a file name); ``where`` by default.

    Returns:
        The docs in row order.
    """
    docs: list[Doc] = []
    for i, row in enumerate(rows):
        try:
            doc_id = str(id_of(i, row))
        except Exception:  # any row shape: the row is then known by its position
            doc_id = f"{where}/{i}"
        if isinstance(row, MalformedRow):
            docs.append(failed_doc(spec, doc_id, row.reason, subtask))
            continue
        try:
            doc = build(i, row, doc_id)
        except DatasetLayoutError:
            raise
        except Exception as e:  # the one per-row guard: a bad row fails alone, the task goes on
            sub = subtask
            if subtask_of is not None:
                try:
                    sub = subtask_of(row)
                except Exception:  # a row whose subtask cannot be read
                    sub = None
            reason = f"malformed row {i} of {source or where}: {type(e).__name__}: {e}"
            logger.debug("%s: %s", spec.task, reason)
            docs.append(failed_doc(spec, doc_id, reason, sub))
            continue
        if doc is not None:
            docs.append(doc)
    return docs


def fail_duplicates(docs: list[Doc], root: Path) -> list[Doc]:
    """Keep the first doc of each id; every later one becomes a failed doc ``<id>#dup<k>`` with the reason.

    Records are keyed by id, so a duplicate cannot keep its id; the new id is stable across re-runs (the k-th
    occurrence in dataset order), so a resumed run skips it like any finished sample.
    """
    first: dict[str, int] = {}
    out: list[Doc] = []
    taken = {d.id for d in docs}
    for row, doc in enumerate(docs):
        if doc.id not in first:
            first[doc.id] = row
            out.append(doc)
            continue
        k = 2
        while f"{doc.id}#dup{k}" in taken:
            k += 1
        new_id = f"{doc.id}#dup{k}"
        taken.add(new_id)
        reason = (f"duplicate sample id {doc.id!r} in {root}: question {row} of the task repeats question "
                  f"{first[doc.id]}, which is kept; ids must be unique")
        logger.warning("%s: %s", doc.task, reason)
        out.append(Doc(id=new_id, task=doc.task, prompt="", subtask=doc.subtask, error=reason,
                       capabilities=list(doc.capabilities)))
    return out
