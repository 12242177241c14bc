"""The evaluation runner: load docs, ask the backend, append records as they finish, resume, shard, score.

For every selected task:

1. The adapter builds the docs from ``<data-root>/<task>`` (or the task's configured path); ``--limit`` keeps the
   first N.
2. Records already in ``OUT/<task>/samples*.jsonl`` are read back (a torn last line is ignored, the last record of
   an id wins) and their ids skipped.
3. Under ``accelerate launch`` (``RANK``/``WORLD_SIZE`` set) each process takes every WORLD_SIZE-th remaining doc
   and appends to ``samples.rank<R>.jsonl``; otherwise to ``samples.jsonl``.
4. Docs are handed to the backend in chunks; media are decoded just before (a missing, corrupt or oversized file,
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.adapters import fail_duplicates
from benchmarks.backends.base import Backend, Request
from benchmarks.doc import Doc
from benchmarks.media import load_media
from benchmarks.records import RecordWriter, read_records, to_jsonable, write_records_atomic
from benchmarks.results import capability_scores, load_results, save_results, task_entry
from benchmarks.scoring import Row, make_scorer
from benchmarks.task import ADAPTERS, Selection, TaskSpec
from dppo_embodied.errors import ConfigError, DppoError
from dppo_embodied.registry import load_entry_point
from dppo_embodied.types import iter_json_lines

logger = logging.getLogger(__name__)


@dataclass
class RunSettings:
    """Settings of one ``dppo eval run``.

    Attributes:
        out: output folder.
        data_root: folder holding one dataset folder per task (named by the task), unless ``data_paths`` says.
        data_paths: task -> dataset folder (from a config file).
        limit: keep the first N docs of each task.
        frames: video frames sampled per clip.
        max_new_tokens: overrides every task's generation cap.
        scorer_options: task -> scorer option overrides (named variants).
        progress: show progress bars.
        merge_timeout_s: how long rank 0 waits for the other ranks.
        model: model name for the results file.
        backend: backend name for the results file.
    """

    out: Path
    data_root: Path | None = None
    data_paths: dict[str, str] = field(default_factory=dict)
    limit: int | None = None
    frames: int = 32
    max_new_tokens: int | None = None
    scorer_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    progress: bool = True
    merge_timeout_s: float = 86400.0
    model: str = ""
    backend: str = ""

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"--limit must be >= 1, got {self.limit}")
        if self.frames < 1:
            raise ConfigError(f"--frames must be >= 1, got {self.frames}")


def dist_info() -> tuple[int, int]:
    """``(rank, world_size)`` from the environment ``accelerate launch``/``torchrun`` set (``(0, 1)`` otherwise)."""
    try:
        return int(os.environ.get("RANK", "0")), max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError as e:
        raise ConfigError(f"RANK/WORLD_SIZE must be integers: {e}") from e


def dataset_root(spec: TaskSpec, settings: RunSettings) -> Path:
    """Where a task's dataset folder is: ``data_paths[task]``, else ``<data_root>/<task>``."""
    if spec.task in settings.data_paths:
        return Path(settings.data_paths[spec.task]).expanduser()
    if settings.data_root is None:
        raise ConfigError(f"task {spec.task}: no dataset folder; pass --data-root DIR (holding {spec.task}/) or "
                          f"set data_paths.{spec.task} in the config file")
    return Path(settings.data_root).expanduser() / spec.task


def load_docs(spec: TaskSpec, root: Path, subtasks: tuple[str, ...] | None = None, limit: int | None = None
              ) -> list[Doc]:
    """Build a task's docs with its adapter; a repeated id fails alone (see :func:`fail_duplicates`)."""
    adapter = load_entry_point(spec.adapter) if ":" in spec.adapter else ADAPTERS.get(spec.adapter)
    docs = fail_duplicates(list(adapter(spec, root, subtasks)), root)
    return docs[:limit] if limit else docs


def base_record(doc: Doc) -> dict[str, Any]:
    """The fields of a record that come from the doc."""
    return {"id": doc.id, "task": doc.task, "subtask": doc.subtask, "prompt": doc.prompt,
            "capabilities": list(doc.capabilities)}


# ------------------------------------------------------------------------------------------------- scoring
def score_records(spec: TaskSpec, docs: Sequence[Doc], records: dict[str, dict[str, Any]],
                  options: dict[str, Any] | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Score the records of the docs that have one, in dataset order, with a fresh scorer.

    Returns:
        ``(final records in dataset order, results.json entry)``; the entry's ``details`` may include a
        ``submission`` mapping (EgoSchema), which the caller writes to its own file.
    """
    opts = {**spec.scorer_options, **(options or {})}
    scorer = make_scorer(spec.scorer, spec.task, opts)
    scorer.reset()
    rows: list[Row] = []
    final: list[dict[str, Any]] = []
    caps: dict[str, list[str]] = {}
    failures: list[dict[str, str]] = []
    for doc in docs:
        rec = records.get(doc.id)
        if rec is None:
            continue
        base = base_record(doc)
        if not doc.prompt:  # closed-loop episodes: the record holds the first step's prompt
            base.pop("prompt")
        rec = {**rec, **base}
        if rec.get("error"):
            rec.update(score=0.0, parsed=None)
            rows.append(Row(doc.id, doc.subtask, 0.0, failed=True, meta=doc.meta))
            failures.append({"id": doc.id, "error": str(rec["error"])})
        else:
            try:
                s = scorer.score(doc, rec.get("response") or "")
            except Exception as e:  # the one per-sample scoring guard: bad scoring data (a missing mask, a
                # malformed target) or a response no rule can read is a failed sample with the reason, never a
                # crashed run that writes nothing
                logger.debug("%s: scoring %s failed", spec.task, doc.id, exc_info=True)
                reason = str(e) if isinstance(e, DppoError) else f"{type(e).__name__}: {e}"
                reason = reason[:300].encode("utf-8", "backslashreplace").decode("utf-8")  # bounded, encodable
                rec.update(error=f"scoring failed: {reason}", score=0.0, parsed=None)
                rows.append(Row(doc.id, doc.subtask, 0.0, failed=True, meta=doc.meta))
                failures.append({"id": doc.id, "error": rec["error"]})
            else:
                rec.update(score=s.score, parsed=to_jsonable(s.parsed))
                if s.extra:
                    rec["extra"] = to_jsonable(s.extra)
                rows.append(Row(doc.id, doc.subtask, s.score, meta=doc.meta, extra=s.extra, parsed=s.parsed))
        caps[doc.id] = list(doc.capabilities)
        final.append(rec)
    result = scorer.aggregate(rows)
    entry = task_entry(result, capability_scores(rows, caps), failures, spec.scorer, scorer.options)
    if "submission" in result.details:
        entry["submission"] = result.details["submission"]
    return final, entry


# ------------------------------------------------------------------------------------------------- running
class _TaskRun:
    """Generation of one task's remaining docs, with per-sample appends."""

    def __init__(self, spec: TaskSpec, backend: Backend, settings: RunSettings, writer: RecordWriter) -> None:
        self.spec, self.backend, self.settings, self.writer = spec, backend, settings, writer
        self.max_new_tokens = settings.max_new_tokens or spec.generation.max_new_tokens
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="dppo-media")

    def _request(self, doc: Doc) -> Request | str:
        """The backend request of a doc, or the failure reason."""
        if doc.error:
            return doc.error
        try:
            images = load_media(doc, self.settings.frames)
        except DppoError as e:
            return f"media: {e}"
        except Exception as e:  # the one per-doc guard: whatever one doc's media raise, that doc fails alone
            logger.debug("%s: loading the media of %s failed", doc.task, doc.id, exc_info=True)
            return f"media: {type(e).__name__}: {e}"
        return Request(doc.id, doc.prompt, images, doc.system, self.max_new_tokens, self.spec.generation.temperature)

    def run_chunk(self, chunk: Sequence[Doc], tick: Callable[[int], None]) -> None:
        prepared = list(self._pool.map(self._request, chunk)) if len(chunk) > 1 else [self._request(chunk[0])]
        requests: list[Request] = []
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


def _progress(total: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="sample", disable=not enabled, dynamic_ncols=True,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}]")


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
    if spec.media == "env":  # closed-loop episodes run on rank 0 only (not sharded)
        from benchmarks.closed_loop import run_closed_loop

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
        bar = _progress(len(todo), spec.task, settings.progress and rank == 0)
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


def finalize_task(spec: TaskSpec, docs: Sequence[Doc], settings: RunSettings,
                  subtasks: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Merge every record file of a task, score in dataset order, rewrite ``samples.jsonl``, update results."""
    task_dir = settings.out / spec.task
    records: dict[str, dict[str, Any]] = read_records(task_dir / "samples.jsonl")
    rank_files = sorted(task_dir.glob("samples.rank*.jsonl"))
    for f in rank_files:
        records.update(read_records(f))
    final, entry = score_records(spec, docs, records, settings.scorer_options.get(spec.task))
    known = {d.id for d in docs}
    extra = [r for i, r in records.items() if i not in known]  # records of docs outside this run's selection
    write_records_atomic(task_dir / "samples.jsonl", [*final, *extra])
    for f in [*rank_files, *task_dir.glob(".rank*.done")]:
        f.unlink(missing_ok=True)
    submission = entry.pop("submission", None)
    if submission is not None:
        import json

        (task_dir / "submission.json").write_text(json.dumps(submission, indent=1) + "\n", encoding="utf-8")
        entry["details"]["submission_file"] = str(task_dir / "submission.json")
    if subtasks is not None:
        entry["selected_subtasks"] = list(subtasks)
    data = load_results(settings.out)
    data["tasks"][spec.task] = entry
    data["run"] = {"model": settings.model, "backend": settings.backend, "frames": settings.frames,
                   "limit": settings.limit,
                   "max_new_tokens": settings.max_new_tokens}
    save_results(settings.out, data)
    return entry


def run(selections: Sequence[Selection], backend: Backend, settings: RunSettings) -> dict[str, Any]:
    """Run every selected task in order; returns ``{task: results entry}`` (empty on ranks other than 0)."""
    out: dict[str, Any] = {}
    for sel in selections:
        entry = run_task(sel, backend, settings)
        if entry is not None:
            out[sel.spec.task] = entry
    return out


# ----------------------------------------------------------------------------------------------- re-scoring
def read_responses(path: Path) -> tuple[dict[str, str], int]:
    """``{id: response}`` from a JSONL file of ``{"id", "response"}`` rows (``text``/``prediction`` accepted too).

    Returns:
        ``(responses, bad_lines)``; a later row of an id replaces an earlier one.
    """
    if not path.is_file():
        raise DppoError(f"responses file {path} does not exist; expected JSONL rows "
                        '{"id": ..., "response": ...}')
    out: dict[str, str] = {}
    bad: list[str] = []
    for lineno, rec, error in iter_json_lines(path):  # each line decoded alone: a bad byte spoils that line only
        if error is None:
            try:
                rid = rec["id"]
                text = next(rec[k] for k in ("response", "text", "prediction") if k in rec)
            except (KeyError, TypeError, StopIteration):
                error = 'not an object with "id" and "response"'
            else:
                out[str(rid)] = "" if text is None else str(text)
                continue
        bad.append(f"line {lineno}: {error}")
    if bad:
        logger.warning("%s: %d malformed line(s) skipped: %s", path, len(bad),
                       "; ".join(bad[:5]) + (" ..." if len(bad) > 5 else ""))
    return out, len(bad)


def score_responses(spec: TaskSpec, root: Path, responses: Path, out: Path,
                    options: dict[str, Any] | None = None, subtasks: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Score another harness's responses with the official rule (no model, no media): writes
    ``OUT/<task>/samples.jsonl`` and updates ``OUT/results.json``/``results.md``.

    Docs without a response are left out (reported as ``missing_responses``); responses with unknown ids are
    counted as ``unknown_ids``.
    """
    docs = load_docs(spec, root, subtasks)
    resp, bad = read_responses(responses)
    records = {d.id: {**base_record(d), "response": resp[d.id], "error": d.error} for d in docs if d.id in resp}
    final, entry = score_records(spec, docs, records, options)
    known = {d.id for d in docs}
    entry["details"].update(missing_responses=len(docs) - len(final), unknown_ids=sum(i not in known for i in resp),
                            malformed_lines=bad, responses_file=str(responses))
    task_dir = out / spec.task
    task_dir.mkdir(parents=True, exist_ok=True)
    write_records_atomic(task_dir / "samples.jsonl", final)
    submission = entry.pop("submission", None)
    if submission is not None:
        import json

        (task_dir / "submission.json").write_text(json.dumps(submission, indent=1) + "\n", encoding="utf-8")
    data = load_results(out)
    data["tasks"][spec.task] = entry
    save_results(out, data)
    return entry
