"""``dppo eval score``: score another harness's responses by the official rule, with every denominator visible.

The responses file is JSONL of ``{"id": ..., "response": ...}`` rows (``text`` or ``prediction`` are accepted for
``response``). Ids follow the benchmark's id contract (``docs/benchmarks.md``). Nothing changes a denominator
silently:

- response ids that match no sample, ids given more than once (the last row wins) and dataset samples without a
  response are counted and listed (first examples) in the task's ``responses`` entry of ``results.json``, and the
  CLI prints them on stderr;
- a responses file that matches no sample at all is an error (the message shows ids from both sides);
- a sample without a response is a failed sample (scored 0, error "no response") unless ``allow_missing``, in
  which case it is left out and the denominator actually used is recorded (``responses.denominator``).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.records import write_records_atomic
from benchmarks.results import load_results, save_results
from benchmarks.runner import load_docs
from benchmarks.task import TaskSpec
from benchmarks.task_scoring import base_record, score_records, write_submission
from dppo_embodied.errors import DataError
from dppo_embodied.io import iter_json_lines

logger = logging.getLogger(__name__)

#: How many ids each list in ``results.json`` (and on stderr) shows.
EXAMPLES = 10


@dataclass
class Responses:
    """A parsed responses file.

    Attributes:
        path: the file.
        by_id: id -> response text (the last row of an id wins).
        counts: id -> number of rows with that id (in file order).
        malformed: ``"line N: reason"`` for each line that is not a ``{"id", "response"}`` object.
    """

    path: Path
    by_id: dict[str, str] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    malformed: list[str] = field(default_factory=list)

    @property
    def duplicates(self) -> dict[str, int]:
        """Ids given more than once -> how many times."""
        return {i: n for i, n in self.counts.items() if n > 1}


def read_responses(path: Path) -> Responses:
    """Parse a responses file; every line is decoded alone, so a bad line spoils only itself.

    Raises:
        DataError: the file does not exist.
    """
    if not path.is_file():
        raise DataError(f"responses file {path} does not exist; expected JSONL rows "
                        '{"id": ..., "response": ...}')
    out = Responses(path)
    for lineno, rec, error in iter_json_lines(path):
        if error is None:
            try:
                rid = rec["id"]
                text = next(rec[k] for k in ("response", "text", "prediction") if k in rec)
            except (KeyError, TypeError, StopIteration):
                error = 'not an object with "id" and "response"'
            else:
                rid = str(rid)
                out.by_id[rid] = "" if text is None else str(text)
                out.counts[rid] += 1
                continue
        out.malformed.append(f"line {lineno}: {error}")
    if out.malformed:
        logger.warning("%s: %d malformed line(s) skipped: %s", path, len(out.malformed),
                       "; ".join(out.malformed[:5]) + (" ..." if len(out.malformed) > 5 else ""))
    return out


def id_list(ids: list[str]) -> dict[str, Any]:
    """``{"count", "examples"}`` (the first :data:`EXAMPLES` ids)."""
    return {"count": len(ids), "examples": ids[:EXAMPLES]}


def score_responses(spec: TaskSpec, root: Path, responses: Path, out: Path, options: dict[str, Any] | None = None,
                    subtasks: tuple[str, ...] | None = None, allow_missing: bool = False) -> dict[str, Any]:
    """Score a responses file on the task's docs (no model, no media); writes ``OUT/<task>/samples.jsonl`` (one
    record per sample in the denominator, in dataset order) and the task's entry in ``OUT/results.json``.

    Returns:
        The task's ``results.json`` entry; ``entry["responses"]`` lists matched, unmatched, duplicate and missing
        ids and the denominator used.

    Raises:
        DataError: the responses file is missing or none of its ids matches a sample.
    """
    docs = load_docs(spec, root, subtasks)
    resp = read_responses(responses)
    known = {d.id for d in docs}
    unmatched = [i for i in resp.by_id if i not in known]
    matched = len(resp.by_id) - len(unmatched)
    if matched == 0:
        raise DataError(
            f"{responses}: none of its {len(resp.by_id)} response id(s) matches one of the {len(docs)} samples of "
            f"task {spec.task} (response ids: {unmatched[:3]}; sample ids: {[d.id for d in docs[:3]]}). Key each "
            "response by the sample id of docs/benchmarks.md (the dataset's own id, else <file stem or "
            "config/split>/<0-based row>)")
    missing = [d.id for d in docs if d.id not in resp.by_id]
    records: dict[str, dict[str, Any]] = {}
    for d in docs:
        if d.id in resp.by_id:
            records[d.id] = {**base_record(d), "response": resp.by_id[d.id], "error": d.error}
        elif not allow_missing:
            records[d.id] = {**base_record(d), "response": None,
                             "error": f"no response: id {d.id!r} is not in {responses.name}"}
    final, entry = score_records(spec, docs, records, options)
    entry["responses"] = {
        "file": str(responses), "rows": sum(resp.counts.values()), "matched": matched,
        "unmatched": id_list(unmatched),
        "duplicates": {**id_list(list(resp.duplicates)), "rows": sum(resp.duplicates.values())},
        "missing": id_list(missing), "malformed_lines": id_list(resp.malformed),
        "missing_counted_as": "excluded (--allow-missing)" if allow_missing else "failed",
        "dataset_samples": len(docs), "denominator": entry["n"],
    }
    entry["data_root"] = str(root.resolve())  # where `dppo eval report` finds the media for its thumbnails
    entry["details"].update(missing_responses=len(missing), unknown_ids=len(unmatched),
                            malformed_lines=len(resp.malformed), responses_file=str(responses))
    for what, ids in (("match no sample", unmatched), ("repeat (the last row wins)", list(resp.duplicates)),
                      ("of the dataset have no response", missing)):
        if ids:
            logger.info("%s: %d id(s) %s: %s", spec.task, len(ids), what, ids[:EXAMPLES])
    task_dir = out / spec.task
    task_dir.mkdir(parents=True, exist_ok=True)
    write_records_atomic(task_dir / "samples.jsonl", final)
    write_submission(task_dir, entry)
    data = load_results(out)
    data["tasks"][spec.task] = entry
    save_results(out, data)
    return entry


def summary_lines(task: str, entry: dict[str, Any]) -> list[str]:
    """The denominator report of a scored responses file, one line per finding (for stderr)."""
    r = entry.get("responses") or {}
    lines = []
    for key, what in (("unmatched", "response id(s) match no sample"),
                      ("duplicates", "response id(s) appear more than once (the last row wins)"),
                      ("missing", "sample(s) have no response"), ("malformed_lines", "line(s) are malformed")):
        item = r.get(key) or {}
        if item.get("count"):
            extra = (" -> counted as failed" if key == "missing" and r.get("missing_counted_as") == "failed"
                     else " -> left out (--allow-missing)" if key == "missing" else "")
            lines.append(f"{task}: {item['count']} {what}{extra}; first: {', '.join(map(str, item['examples']))}")
    if r:
        lines.append(f"{task}: denominator {r['denominator']} of {r['dataset_samples']} dataset samples "
                     f"({r['matched']} matched response(s))")
    return lines
