"""``dppo eval report``: capability table over the 9 dimensions, radar plot, weakest subtasks, diff of two runs.

Reads ``OUT/results.json`` (and ``OUT/<task>/samples.jsonl`` for per-sample flips when comparing) and writes
``OUT/report.md``, ``OUT/report.json``, ``OUT/radar.png`` (matplotlib, Agg backend) and the self-contained results
page ``OUT/report.html`` (:mod:`benchmarks.report_html`). Capabilities no task measured are gaps, not zeros.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.records import read_records, to_jsonable
from benchmarks.results import capability_table, load_results
from dppo_embodied.errors import DataError
from dppo_embodied.taxonomy import BY_SLUG, SLUGS


def _load(out: Path) -> dict[str, Any]:
    if not (out / "results.json").is_file():
        raise DataError(f"{out} has no results.json; run `dppo eval run` or `dppo eval score` into it first")
    data = load_results(out)
    data["capabilities"] = capability_table(data["tasks"])
    return data


def weakest(data: dict[str, Any], top: int = 10) -> list[tuple[str, float]]:
    """The ``top`` lowest-scoring subtasks (tasks without subtasks count as one), ascending."""
    items: list[tuple[str, float]] = []
    for task, e in data["tasks"].items():
        subs = {k: v for k, v in (e.get("subtasks") or {}).items() if v is not None}
        if subs:
            items += list(subs.items())
        elif e.get("overall") is not None:
            items.append((task, float(e["overall"])))
    return sorted(items, key=lambda kv: kv[1])[:top]


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def diff(a: dict[str, Any], b: dict[str, Any], out_a: Path, out_b: Path) -> dict[str, Any]:
    """Run A minus run B: per task, subtask and capability, plus per-sample flips for tasks in both runs."""
    tasks: dict[str, Any] = {}
    for task in sorted(set(a["tasks"]) | set(b["tasks"])):
        ea, eb = a["tasks"].get(task, {}), b["tasks"].get(task, {})
        subs = sorted(set(ea.get("subtasks") or {}) | set(eb.get("subtasks") or {}))
        entry: dict[str, Any] = {
            "a": ea.get("overall"), "b": eb.get("overall"), "delta": _delta(ea.get("overall"), eb.get("overall")),
            "subtasks": {s: _delta((ea.get("subtasks") or {}).get(s), (eb.get("subtasks") or {}).get(s))
                         for s in subs},
        }
        if ea and eb:
            ra, rb = read_records(out_a / task / "samples.jsonl"), read_records(out_b / task / "samples.jsonl")
            common = [i for i in ra if i in rb and ra[i].get("score") is not None and rb[i].get("score") is not None]
            entry["samples_compared"] = len(common)
            entry["improved"] = sum(float(ra[i]["score"]) > float(rb[i]["score"]) for i in common)
            entry["regressed"] = sum(float(ra[i]["score"]) < float(rb[i]["score"]) for i in common)
        tasks[task] = entry
    caps = {s: _delta(a["capabilities"][s]["score"], b["capabilities"][s]["score"]) for s in SLUGS}
    return {"tasks": tasks, "capabilities": caps}


def radar_png(path: Path, series: dict[str, list[float | None]]) -> Path:
    """A radar plot of the 9 capability scores (0-100) of one or more runs; a capability without a score is a gap
    (the line breaks there) and its label says "not evaluated"."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    missing = {i for i in range(len(SLUGS)) if all(v[i] is None for v in series.values())}
    labels = [BY_SLUG[s].name.replace(" & ", " &\n") + ("\n(not evaluated)" if i in missing else "")
              for i, s in enumerate(SLUGS)]
    angles = np.linspace(0, 2 * np.pi, len(labels), endpoint=False).tolist()
    fig = plt.figure(figsize=(7, 7))
    ax = fig.add_subplot(111, polar=True)
    for name, values in series.items():
        vals = [np.nan if v is None else float(v) for v in values]  # NaN breaks the line: a gap, not a zero
        (line,) = ax.plot([*angles, angles[0]], [*vals, vals[0]], linewidth=1.5, marker="o", label=name)
        if not any(v is None for v in values):
            ax.fill([*angles, angles[0]], [*vals, vals[0]], alpha=0.15, color=line.get_color())
    ax.set_xticks(angles)
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_title("Capability profile (0-100)")
    ax.legend(loc="upper right", bbox_to_anchor=(1.3, 1.1), fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _f(v: float | None, signed: bool = False) -> str:
    if v is None:
        return "-"
    return f"{v:+.2f}" if signed else f"{v:.2f}"


def render(data: dict[str, Any], weak: list[tuple[str, float]], d: dict[str, Any] | None, name_a: str,
           name_b: str | None) -> str:
    """The report as Markdown."""
    lines = [f"# Evaluation report: {name_a}", "", "## Capabilities (9 dimensions)", "",
             "| capability | score | tasks |", "|---|---:|---|"]
    for slug in SLUGS:
        c = data["capabilities"][slug]
        score = "not evaluated" if c["score"] is None else _f(c["score"])
        lines.append(f"| {c['name']} | {score} | {', '.join(c['tasks']) or '-'} |")
    lines += ["", "## Tasks", "", "| task | metric | score | failed |", "|---|---|---:|---:|"]
    for task, e in data["tasks"].items():
        lines.append(f"| {task} | {e.get('metric')} | {_f(e.get('overall'))} | {e.get('n_failed', 0)} |")
    lines += ["", "## Weakest subtasks", "", "| subtask | score |", "|---|---:|"]
    lines += [f"| {k} | {_f(v)} |" for k, v in weak]
    if d is not None:
        lines += ["", f"## Diff: {name_a} minus {name_b}", "", "| task | A | B | delta | improved | regressed |",
                  "|---|---:|---:|---:|---:|---:|"]
        for task, e in d["tasks"].items():
            lines.append(f"| {task} | {_f(e['a'])} | {_f(e['b'])} | {_f(e['delta'], True)} | "
                         f"{e.get('improved', '-')} | {e.get('regressed', '-')} |")
        lines += ["", "| capability | delta |", "|---|---:|"]
        lines += [f"| {BY_SLUG[s].name} | {_f(v, True)} |" for s, v in d["capabilities"].items()]
        moved = sorted(((f"{t}/{s}", v) for t, e in d["tasks"].items() for s, v in e["subtasks"].items()
                        if v is not None), key=lambda kv: kv[1])
        if moved:
            lines += ["", "Largest subtask changes: " + ", ".join(f"{k} {v:+.2f}" for k, v in
                                                                  [*moved[:5], *moved[-5:][::-1]])]
    return "\n".join(lines) + "\n"


def write_report(out: Path, compare: Path | None = None, top: int = 10, data_root: Path | None = None,
                 thumbs_per_task: int = 60) -> dict[str, Path]:
    """Write ``report.md``, ``report.json``, ``radar.png`` and ``report.html`` into ``out``; returns their paths.

    Args:
        out: a run's output folder.
        compare: another run to diff against.
        top: how many weakest subtasks to list.
        data_root: folder holding one dataset folder per task, for the page's thumbnails (a re-score records its
            own folder in ``results.json``).
        thumbs_per_task: how many samples per task get thumbnails on the page.
    """
    from benchmarks.report_html import page_data, write_html

    data = _load(out)
    weak = weakest(data, top)
    series = {out.name or str(out): [data["capabilities"][s]["score"] for s in SLUGS]}
    d = None
    other = None
    if compare is not None:
        other = _load(compare)
        d = diff(data, other, out, compare)
        series[compare.name or str(compare)] = [other["capabilities"][s]["score"] for s in SLUGS]
    paths = {"markdown": out / "report.md", "json": out / "report.json", "radar": out / "radar.png",
             "html": out / "report.html"}
    paths["markdown"].write_text(render(data, weak, d, out.name, compare.name if compare else None),
                                 encoding="utf-8")
    paths["json"].write_text(json.dumps(to_jsonable({"capabilities": data["capabilities"], "weakest": weak,
                                                     "diff": d}), indent=2) + "\n", encoding="utf-8")
    radar_png(paths["radar"], series)
    write_html(paths["html"], page_data(data, out, other, compare, data_root, thumbs_per_task), series)
    return paths
