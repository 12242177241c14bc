"""Per-task results, the capability view and the ``results.json`` / ``results.md`` files.

Capability scores: within a task, a capability's score is the mean (0-100) of the scored samples tagged with it
(the tags come from the task's per-subtask mapping); across tasks, the capability table averages the task-level
capability scores (each task weighs the same). ``results.json`` accumulates tasks: running more tasks into the
same ``OUT`` adds them; re-running a task replaces its entry.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks.scoring.base import Row, TaskResult, mean, pct
from dppo_embodied.io import atomic_write_json, atomic_write_text, read_json, to_jsonable
from dppo_embodied.provenance import environment
from dppo_embodied.taxonomy import BY_SLUG, SLUGS

RESULTS_VERSION = 1


def capability_scores(rows: Sequence[Row], caps: dict[str, list[str]]) -> dict[str, float | None]:
    """Mean score (0-100) per capability over the scored rows; ``caps`` maps row id -> capability slugs."""
    acc: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        if r.score is None:
            continue
        for c in caps.get(r.id, []):
            acc[c].append(r.score)
    return {c: pct(mean(acc[c])) for c in SLUGS if c in acc}


def task_entry(result: TaskResult, capabilities: dict[str, float | None], failures: list[dict[str, str]],
               scorer: str, options: dict[str, Any]) -> dict[str, Any]:
    """The ``results.json`` entry of one task."""
    d = asdict(result)
    d.pop("task")
    d["details"] = to_jsonable({k: v for k, v in d["details"].items() if k != "submission"})
    d["capabilities"] = capabilities
    d["failures"] = failures[:50]
    d["scorer"] = scorer
    d["scorer_options"] = to_jsonable(options)
    return d


def capability_table(tasks: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Across tasks: per capability, the mean of the task-level scores and the tasks that measure it."""
    out: dict[str, dict[str, Any]] = {}
    for slug in SLUGS:
        vals = {t: e["capabilities"][slug] for t, e in tasks.items()
                if e.get("capabilities", {}).get(slug) is not None}
        out[slug] = {"name": BY_SLUG[slug].name, "score": mean(list(vals.values())), "tasks": vals}
    return out


def load_results(out: Path) -> dict[str, Any]:
    """``OUT/results.json`` (an empty skeleton when absent).

    Raises:
        DataError: the file exists but is not JSON (the message names it).
    """
    data = read_json(out / "results.json", default=None)
    if isinstance(data, dict) and isinstance(data.get("tasks"), dict):
        return data
    return {"version": RESULTS_VERSION, "tasks": {}}


def save_results(out: Path, data: dict[str, Any]) -> None:
    """Write ``results.json`` and ``results.md`` (each atomically)."""
    data["version"] = RESULTS_VERSION
    data["updated"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    data["provenance"] = environment()  # package versions, git commit, command line
    data["capabilities"] = capability_table(data["tasks"])
    data["summary"] = {
        "tasks": len(data["tasks"]),
        "samples": sum(int(e.get("n", 0)) for e in data["tasks"].values()),
        "failed": sum(int(e.get("n_failed", 0)) for e in data["tasks"].values()),
    }
    atomic_write_json(out / "results.json", data, strict=True)
    atomic_write_text(out / "results.md", render_markdown(data))


def _fmt(v: Any) -> str:
    return "-" if v is None else f"{v:.2f}" if isinstance(v, (int, float)) else str(v)


def render_markdown(data: dict[str, Any]) -> str:
    """A readable summary: tasks, subtasks, capabilities and failures."""
    lines = ["# Evaluation results", ""]
    run = data.get("run", {})
    if run:
        lines += [f"Model `{run.get('model', '?')}` via `{run.get('backend', '?')}`; "
                  f"updated {data.get('updated', '')}.", ""]
    lines += ["| task | metric | score | samples | scored | excluded | failed |", "|---|---|---:|---:|---:|---:|---:|"]
    for name, e in data["tasks"].items():
        lines.append(f"| {name} | {e.get('metric')} | {_fmt(e.get('overall'))} | {e.get('n', 0)} | "
                     f"{e.get('n_scored', 0)} | {e.get('n_excluded', 0)} | {e.get('n_failed', 0)} |")
    s = data.get("summary", {})
    lines += ["", f"{s.get('samples', 0)} samples in {s.get('tasks', 0)} task(s), {s.get('failed', 0)} failed.", ""]
    subs = [(t, k, v) for t, e in data["tasks"].items() for k, v in (e.get("subtasks") or {}).items()]
    if subs:
        lines += ["## Subtasks", "", "| task | subtask | score |", "|---|---|---:|"]
        lines += [f"| {t} | {k} | {_fmt(v)} |" for t, k, v in subs]
        lines.append("")
    lines += ["## Capabilities", "", "| capability | score | tasks |", "|---|---:|---|"]
    for _slug, c in data.get("capabilities", {}).items():
        lines.append(f"| {c['name']} | {_fmt(c['score'])} | {', '.join(c['tasks']) or '-'} |")
    fails = [(t, f) for t, e in data["tasks"].items() for f in e.get("failures", [])[:5]]
    if fails:
        lines += ["", "## Failures (first 5 per task)", ""]
        lines += [f"- {t} `{f['id']}`: {f['error']}" for t, f in fails]
    return "\n".join(lines) + "\n"
