"""The evaluation runner: load docs, ask the backend, append records as they finish, resume, shard, score.

For every selected task:

1. The adapter builds the docs from ``<data-root>/<task>`` (or the task's configured path); ``--limit`` keeps the
   first N.
2. Records already in ``OUT/<task>/samples*.jsonl`` are read back (a torn last line is ignored, the last record of
   an id wins) and their ids skipped.
3. Under ``accelerate launch`` (``RANK``/``WORLD_SIZE`` set) each process takes every WORLD_SIZE-th remaining doc
   and appends to ``samples.rank<R>.jsonl``; otherwise to ``samples.jsonl``.
4. Docs are rendered by the one sample renderer, :func:`dppo_embodied.rendering.render_sample` (the doc's prompt and
   system, its media through the one loader: ``--frames`` sampled video frames first, then the images), and handed
   to the backend in chunks as :class:`~dppo_embodied.generation.ChatRequest` s; media are decoded just before (a
   missing, corrupt or oversized file,
   a malformed row or a repeated id makes that sample a failed record with the reason, and the run goes on; only a
   missing dataset folder or an unreadable question file stops it). Each result is appended and flushed as it
   arrives; every chunk is fsynced.
5. Rank 0 waits for the other ranks, merges all records, scores them **in dataset order** with a fresh scorer
   (so the numbers do not depend on completion order), rewrites ``samples.jsonl`` atomically and updates
   ``OUT/results.json`` and ``OUT/results.md``.

A re-run of the same command skips finished samples, so a run killed at any point (``kill -9`` included) resumes
and ends with the same results and no duplicates. Samples that failed because of the backend (server down, timeout)
are retried on a re-run; samples that failed because of their data (missing media, malformed row) are not.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.adapters import fail_duplicates
from benchmarks.backends.base import Backend
from benchmarks.closed_loop import run_closed_loop
from benchmarks.doc import Doc
from benchmarks.records import RecordWriter, read_records
from benchmarks.settings import RunSettings, dataset_root, dist_info, progress_bar
from benchmarks.task import ADAPTERS, Selection, TaskSpec
from benchmarks.task_scoring import base_record, finalize_task
from dppo_embodied.errors import DppoError
from dppo_embodied.generation import ChatRequest, GenerationSettings
from dppo_embodied.media import MediaLoader
from dppo_embodied.registry import load_entry_point
from dppo_embodied.rendering import render_sample

__all__ = ["RunSettings", "dist_info", "load_docs", "run", "run_task"]

logger = logging.getLogger(__name__)


def load_docs(spec: TaskSpec, root: Path, subtasks: tuple[str, ...] | None = None, limit: int | None = None
              ) -> list[Doc]:
    """Build a task's docs with its adapter; a repeated id fails alone (see :func:`fail_duplicates`)."""
    adapter = load_entry_point(spec.adapter) if ":" in spec.adapter else ADAPTERS.get(spec.adapter)
    docs = fail_duplicates(list(adapter(spec, root, subtasks)), root)
    return docs[:limit] if limit else docs


# ------------------------------------------------------------------------------------------------- running
class _TaskRun:
    """Generation of one task's remaining docs, with per-sample appends."""

    def __init__(self, spec: TaskSpec, backend: Backend, settings: RunSettings, writer: RecordWriter) -> None:
        self.spec, self.backend, self.settings, self.writer = spec, backend, settings, writer
        self.generation = GenerationSettings(max_tokens=settings.max_new_tokens or spec.generation.max_new_tokens,
                                             temperature=spec.generation.temperature)
        self.loader = MediaLoader(settings.frames, cache_size=0)
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="dppo-media")

    def _request(self, doc: Doc) -> ChatRequest | str:
        """The backend request of a doc, or the failure reason."""
        if doc.error:
            return doc.error
        try:
            conversation = render_sample(doc, self.loader)
        except DppoError as e:
            return f"media: {e}"
        except Exception as e:  # the one per-doc guard: whatever one doc's media raise, that doc fails alone
            logger.debug("%s: loading the media of %s failed", doc.task, doc.id, exc_info=True)
            return f"media: {type(e).__name__}: {e}"
        return ChatRequest(conversation, self.generation, doc.id)

    def run_chunk(self, chunk: Sequence[Doc], tick: Callable[[int], None]) -> None:
        prepared = list(self._pool.map(self._request, chunk)) if len(chunk) > 1 else [self._request(chunk[0])]
        requests: list[ChatRequest] = []
        owners: list[Doc] = []
        for doc, req in zip(chunk, prepared, strict=False):
            if isinstance(req, str):
                self.writer.write({**base_record(doc), "response": None, "error": req})
                tick(1)
            else:
                requests.append(req)
                owners.append(doc)

        def on_result(i: int, res: str | Exception) -> None:
            doc = owners[i]
            if isinstance(res, Exception):
                rec = {**base_record(doc), "response": None, "error": f"backend: {type(res).__name__}: {res}"}
            else:
                rec = {**base_record(doc), "response": res, "error": None}
            self.writer.write(rec)
            tick(1)

        if requests:
            self.backend.generate(requests, on_result)
        self.writer.sync()

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def _launch_key() -> str:
    """Identifies this launch: the processes of one ``accelerate launch``/``torchrun`` share their parent."""
    return str(os.getppid())


def _wait_for_ranks(task_dir: Path, world: int, timeout_s: float) -> None:
    t_end = time.monotonic() + timeout_s
    key = _launch_key()
    while True:
        missing = [r for r in range(1, world) if not _marker_ok(task_dir / f".rank{r}.done", key)]
        if not missing:
            return
        if time.monotonic() > t_end:
            raise DppoError(f"{task_dir}: ranks {missing} did not finish within {timeout_s:.0f} s; re-run the same "
                            "command to resume")
        time.sleep(0.5)


def _marker_ok(path: Path, key: str) -> bool:
    try:
        return path.read_text(encoding="utf-8").strip() == key
    except OSError:
        return False


def run_task(sel: Selection, backend: Backend, settings: RunSettings) -> dict[str, Any] | None:
    """Run (or resume) one task and, on rank 0, score it and update ``results.json``.

    Returns:
        The task's ``results.json`` entry on rank 0, ``None`` on the other ranks.
    """
    spec = sel.spec
    rank, world = dist_info()
    settings.task_started.setdefault(spec.task, time.time())
    if spec.media == "env":  # closed-loop episodes run on rank 0 only (not sharded)
        return run_closed_loop(sel, backend, settings) if rank == 0 else None
    docs = load_docs(spec, dataset_root(spec, settings), sel.subtasks, settings.limit)
    task_dir = settings.out / spec.task
    task_dir.mkdir(parents=True, exist_ok=True)
    main = task_dir / "samples.jsonl"
    own = task_dir / f"samples.rank{rank}.jsonl" if world > 1 else main
    done: dict[str, dict[str, Any]] = {}
    for f in sorted(task_dir.glob("samples*.jsonl")):
        done.update(read_records(f))
    done = {k: r for k, r in done.items() if not str(r.get("error") or "").startswith("backend:")}  # retry those
    todo = [d for i, d in enumerate(docs) if i % world == rank and d.id not in done]
    (task_dir / f".rank{rank}.done").unlink(missing_ok=True)
    logger.info("%s: %d docs, %d done, %d to run on rank %d/%d", spec.task, len(docs), len(done), len(todo), rank,
                world)
    if todo:
        writer = RecordWriter(own)
        runner = _TaskRun(spec, backend, settings, writer)
        bar = progress_bar(len(todo), spec.task, settings.progress and rank == 0)
        try:
            size = max(1, int(getattr(backend, "chunk_size", 32)))
            for start in range(0, len(todo), size):
                runner.run_chunk(todo[start: start + size], bar.update)
        finally:
            bar.close()
            runner.close()
            writer.close()
    if world > 1:
        (task_dir / f".rank{rank}.done").write_text(_launch_key(), encoding="utf-8")
        if rank != 0:
            return None
        _wait_for_ranks(task_dir, world, settings.merge_timeout_s)
    return finalize_task(spec, docs, settings, sel.subtasks)


def run(selections: Sequence[Selection], backend: Backend, settings: RunSettings) -> dict[str, Any]:
    """Run every selected task in order; returns ``{task: results entry}`` (empty on ranks other than 0)."""
    out: dict[str, Any] = {}
    for sel in selections:
        entry = run_task(sel, backend, settings)
        if entry is not None:
            out[sel.spec.task] = entry
    return out
