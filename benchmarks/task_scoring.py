"""Scoring a task's records in dataset order and committing them: ``samples.jsonl``, ``submission.json`` and the
task's entry in ``results.json`` (used by the runner, the closed-loop suites and ``dppo eval score``)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.doc import Doc
from benchmarks.records import read_records, to_jsonable, write_records_atomic
from benchmarks.results import capability_scores, load_results, save_results, task_entry
from benchmarks.scoring import Row, make_scorer
from benchmarks.settings import RunSettings
from benchmarks.task import TaskSpec
from dppo_embodied.errors import DppoError
from dppo_embodied.provenance import timing

logger = logging.getLogger(__name__)


def base_record(doc: Doc) -> dict[str, Any]:
    """The fields of a record that come from the doc."""
    return {"id": doc.id, "task": doc.task, "subtask": doc.subtask, "prompt": doc.prompt,
            "capabilities": list(doc.capabilities)}


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


def write_submission(task_dir: Path, entry: dict[str, Any]) -> Path | None:
    """Move an entry's ``submission`` mapping (EgoSchema) to ``<task_dir>/submission.json``; return its path."""
    submission = entry.pop("submission", None)
    if submission is None:
        return None
    path = task_dir / "submission.json"
    path.write_text(json.dumps(submission, indent=1) + "\n", encoding="utf-8")
    return path


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
    submission = write_submission(task_dir, entry)
    if submission is not None:
        entry["details"]["submission_file"] = str(submission)
    if subtasks is not None:
        entry["selected_subtasks"] = list(subtasks)
    if spec.task in settings.task_started:
        entry["duration_s"] = round(time.time() - settings.task_started[spec.task], 3)
    data = load_results(settings.out)
    data["tasks"][spec.task] = entry
    data["run"] = {"model": settings.model, "backend": settings.backend, "frames": settings.frames,
                   "limit": settings.limit,
                   "max_new_tokens": settings.max_new_tokens, **timing(settings.started)}
    save_results(settings.out, data)
    return entry
