"""Benchmark adapters: one module per benchmark, each exposing ``load(spec, root, subtasks) -> list[Doc]``.

An adapter reads the dataset folder laid out as the dataset's Hugging Face snapshot (see each task YAML's
``layout``), builds the exact official prompt and the scoring target, and never decodes media. A malformed row
becomes a :class:`~benchmarks.doc.Doc` with ``error`` set (recorded as a failed sample); a missing folder raises
:class:`~benchmarks.data.DatasetLayoutError` naming the expected layout.
"""

from __future__ import annotations

from typing import Any

from benchmarks.doc import Doc
from benchmarks.task import TaskSpec

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
