"""Run summaries: ``summary.json``, a before/after table per capability, and plots of held-out success.

``summary.json`` has the shape the demo promises::

    {"base": {capability: success, ..., "overall": x}, "final": {...}, "n_heldout": n, "curve": [...], ...}

plus ``"closed_loop": {"base": {env: success}, "final": {...}}`` when the recipe has closed-loop tasks, and
``"per_template"`` (:func:`per_template`) when the held-out questions come from a template generator: per template,
base and final success beside the best constant answer's score and the share of the final model's most common
answer, which tells a template answered from the image from one answered the same whatever the image.

Success is on the one score scale of every summary, eval result and report: 0-100 (``"scale": "0-100"``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dppo_embodied.taxonomy import BY_SLUG


def flat(ev: dict[str, Any]) -> dict[str, float]:
    """``{capability: success, ..., "overall": x}`` from an evaluation result."""
    out = {c: round(float(v), 2) for c, v in ev.get("per_capability", {}).items()}
    out["overall"] = round(float(ev.get("overall", 0.0)), 2)
    return out


def stderr(p: float, n: int) -> float:
    """Standard error of a success score ``p`` (0-100) measured on ``n`` samples (0-100 too)."""
    q = p / 100.0
    return 100.0 * math.sqrt(max(q * (1 - q), 0.0) / n) if n else float("nan")


def before_after_table(base: dict[str, Any], final: dict[str, Any]) -> str:
    """Markdown table: capability, n, base, final, change (with the 95 % noise band of the difference); 0-100."""
    rows = ["| capability | n | base | final | change | ±95 % |", "|---|---:|---:|---:|---:|---:|"]
    counts = final.get("counts", {})
    for cap in sorted(set(base.get("per_capability", {})) | set(final.get("per_capability", {}))):
        b, f = base["per_capability"].get(cap, float("nan")), final["per_capability"].get(cap, float("nan"))
        n = int(counts.get(cap, 0))
        band = 1.96 * math.sqrt(stderr(b, n) ** 2 + stderr(f, n) ** 2) if n else float("nan")
        name = BY_SLUG[cap].name if cap in BY_SLUG else cap
        rows.append(f"| {name} | {n} | {b:.1f} | {f:.1f} | {f - b:+.1f} | {band:.1f} |")
    n = int(final.get("n", 0))
    b, f = float(base.get("overall", 0)), float(final.get("overall", 0))
    band = 1.96 * math.sqrt(stderr(b, n) ** 2 + stderr(f, n) ** 2) if n else float("nan")
    rows.append(f"| **overall** | {n} | {b:.1f} | {f:.1f} | {f - b:+.1f} | {band:.1f} |")
    return "\n".join(rows)


def curve_table(curve: Sequence[dict[str, Any]]) -> str:
    """Markdown table of held-out success after each evaluated phase, with the change each phase made."""
    def cell(row: dict[str, Any], prev: dict[str, Any] | None, key: str) -> str:
        v = row.get(key)
        if v is None:
            return "–"
        p = prev.get(key) if prev else None
        return f"{v:.1f}" + (f" ({v - p:+.1f})" if p is not None else "")

    sampled = any(r.get("sampled") is not None for r in curve)
    head = "| after | held-out greedy (change) |" + (" held-out sampled (change) |" if sampled else "") + \
        " general replay | compute (s) |\n|---|---:|" + ("---:|" if sampled else "") + "---:|---:|\n"
    rows = []
    for i, r in enumerate(curve):
        prev = curve[i - 1] if i else None
        rows.append(f"| {r['step']} | {cell(r, prev, 'overall')} |" + (f" {cell(r, prev, 'sampled')} |" if sampled
                                                                        else "")
                    + f" {cell(r, None, 'general')} | {r['compute_s']:.0f} |")
    return head + "\n".join(rows) + "\n"


def plot_run(path: str | Path, base: dict[str, Any], final: dict[str, Any], curve: Sequence[dict[str, Any]],
             title: str = "DPPO metaloop") -> Path:
    """PNG with per-capability bars (base vs final) and held-out success against training compute."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    caps = sorted(set(base.get("per_capability", {})) | set(final.get("per_capability", {})))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    xs = range(len(caps))
    ax1.bar([x - 0.2 for x in xs], [base["per_capability"].get(c, 0) for c in caps], 0.4, label="base")
    ax1.bar([x + 0.2 for x in xs], [final["per_capability"].get(c, 0) for c in caps], 0.4, label="after DPPO")
    ax1.set_xticks(list(xs))
    ax1.set_xticklabels([BY_SLUG[c].name if c in BY_SLUG else c for c in caps], rotation=30, ha="right", fontsize=8)
    ax1.set_ylim(0, 100)
    ax1.set_ylabel("held-out success (0-100)")
    ax1.legend()
    ax1.set_title("per capability")
    ax2.plot([p["compute_s"] for p in curve], [p["overall"] for p in curve], marker="o")
    for p in curve:
        ax2.annotate(p["step"], (p["compute_s"], p["overall"]), fontsize=7, xytext=(2, 2), textcoords="offset points")
    ax2.set_xlabel("training compute (CPU s)")
    ax2.set_ylabel("held-out success, overall (0-100)")
    ax2.set_ylim(0, 100)
    ax2.set_title("held-out success vs compute")
    fig.suptitle(title)
    return _save(fig, path)


def _save(fig: Any, path: str | Path) -> Path:
    """Write a figure as PNG (parents made) and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_compare(path: str | Path, curves: dict[str, Sequence[dict[str, Any]]], target: float | None = None) -> Path:
    """PNG of held-out success against compute, one line per ablation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, curve in curves.items():
        ax.plot([p["compute_s"] for p in curve], [p["overall"] for p in curve], marker="o", label=name)
    if target is not None:
        ax.axhline(target, color="grey", ls="--", lw=1, label=f"target {target:.1f}")
    ax.set_xlabel("training compute (CPU s)")
    ax.set_ylabel("held-out success, overall (0-100)")
    ax.set_ylim(0, 100)
    ax.legend()
    return _save(fig, path)


def compute_to_reach(curve: Sequence[dict[str, Any]], target: float) -> float | None:
    """Compute at the first curve point whose overall success reaches ``target`` (None if never)."""
    for p in curve:
        if p["overall"] >= target:
            return float(p["compute_s"])
    return None


#: a template whose most common answer covers at least this share of its items is answered the same whatever the image
ONE_ANSWER_SHARE = 90.0


#: the most common gold answers and responses :func:`best_constant` tries (bounds its cost on large templates)
CONSTANTS_TRIED = 16


def best_constant(samples: Sequence[Any], responses: Sequence[str]) -> float:
    """Success (0-100) of the best single answer given to every sample: the :data:`CONSTANTS_TRIED` most common
    gold answers of ``samples`` (their canonical text) and most common ``responses`` are each tried as the answer
    to all of them, scored by the one success function of evaluation and reward
    (:func:`dppo_embodied.metrics.score_sample`; MRA-scored numbers count as solved from 0.5)."""
    from collections import Counter

    from dppo_embodied.answer_text import target_text
    from dppo_embodied.metrics import score_sample
    from dppo_embodied.types import format_answer

    golds = Counter(target_text(format_answer(s)) for s in samples).most_common(CONSTANTS_TRIED)
    said = Counter(responses).most_common(CONSTANTS_TRIED)
    tried = dict.fromkeys([text for text, _ in golds + said])
    best = max((sum(score_sample(s, r).success for s in samples) for r in tried), default=0)
    return round(100.0 * best / len(samples), 2) if samples else 0.0


def per_template(out: Path, base_tag: str, final_tag: str) -> dict[str, dict[str, Any]]:
    """Held-out QA success per question template of the base and final evaluations (0-100), with
    ``best_constant`` (:func:`best_constant`: what one answer to every item would score) and ``final_answer`` /
    ``final_share`` (the final model's most common parsed answer and its share of the template's items); ``{}``
    when the held-out samples carry no ``template`` (questions read from files).

    Args:
        out: the run folder (``data/heldout.jsonl``, ``eval/<tag>/heldout_qa/samples.jsonl``).
        base_tag, final_tag: the evaluations' tags (``base``, ``k3``...).
    """
    from collections import Counter, defaultdict

    from benchmarks.records import read_records
    from dppo_embodied.types import load_samples

    path = out / "data" / "heldout.jsonl"
    samples = [s for s in (load_samples(path)[0] if path.is_file() else []) if s.metadata.get("template")]
    if not samples:
        return {}
    recs = {tag: read_records(out / "eval" / tag.replace("/", "-") / "heldout_qa" / "samples.jsonl")
            for tag in (base_tag, final_tag)}
    by: dict[str, list[Any]] = defaultdict(list)
    for s in samples:
        by[str(s.metadata["template"])].append(s)
    table: dict[str, dict[str, Any]] = {}
    for template, group in sorted(by.items()):
        def success(tag: str, group: list[Any] = group) -> float | None:
            scored = [float(recs[tag][s.id].get("score") or 0.0) for s in group if s.id in recs[tag]]
            return round(100.0 * sum(scored) / len(scored), 2) if scored else None

        final = [recs[final_tag][s.id] for s in group if s.id in recs[final_tag]]
        answers = Counter(str(r.get("parsed")) for r in final)
        top, count = answers.most_common(1)[0] if answers else (None, 0)
        responses = [str(r.get("response") or "") for r in final]
        table[template] = {"n": len(group), "base": success(base_tag), "final": success(final_tag),
                           "best_constant": best_constant(group, responses),
                           "final_answer": top, "final_share": round(100.0 * count / max(len(final), 1), 2)}
    return table


def template_table(table: dict[str, dict[str, Any]]) -> str:
    """Markdown table of :func:`per_template` (0-100)."""
    rows = ["| template | n | base | final | best constant | final's most common answer |",
            "|---|---:|---:|---:|---:|---|"]
    for t, r in table.items():
        def num(v: float | None) -> str:
            return "–" if v is None else f"{v:.1f}"

        one = " (one answer)" if r["final_share"] >= ONE_ANSWER_SHARE else ""
        answer = str(r["final_answer"])
        answer = answer if len(answer) <= 40 else answer[:39] + "…"
        rows.append(f"| {t} | {r['n']} | {num(r['base'])} | {num(r['final'])} | {r['best_constant']:.1f} | "
                    f"`{answer}` {r['final_share']:.0f} %{one} |")
    return "\n".join(rows) + (f"\n\nA template marked *one answer* gets the same answer to at least "
                               f"{ONE_ANSWER_SHARE:.0f} % of its items: its success is that answer's share, not "
                               "what the model sees.\n")


def step_seconds(out: Path) -> dict[str, float]:
    """Compute seconds of each committed step that trained or rolled out (``state.json``'s step values)."""
    from dppo_embodied.io import read_json

    values = (read_json(out / "state.json", default=None) or {}).get("values", {})
    return {k: round(float(v["seconds"]), 2) for k, v in values.items()
            if isinstance(v, dict) and isinstance(v.get("seconds"), (int, float))}


def read_evals(out: Path) -> list[dict[str, Any]]:
    """The metaloop figures of every evaluation of a run, in step order: the ``"metaloop"`` entry of each
    ``<out>/eval/<tag>/results.json`` (:mod:`training.algorithm.evaluation` runs the benchmark runner there)."""
    from benchmarks.results import load_results

    evals = [load_results(p.parent).get("metaloop") for p in sorted((out / "eval").glob("*/results.json"))]
    return sorted((e for e in evals if e), key=lambda e: e["seq"])


def summarize_run(out: Path, name: str, run: dict[str, Any], write: bool = True) -> dict[str, Any]:
    """The run summary from the committed evaluations (:func:`read_evals`); written as ``summary.json``,
    ``summary.md`` (before/after table) and ``curve.png`` when ``write``.

    Args:
        out: the run folder.
        name: the run name (titles).
        run: run facts copied into the summary (``mode``, ``sampling``, ``loops_done`` (metaloops, DPPO's closing
            RL half-step not counted), ``compute_s``, ``teacher_calls``; optional ``closing_rl``, whether that
            half-step ran, ``checkpoint``, the final model relative to the run folder, and ``sessions``,
            each start or resume).
        write: write the files (rank 0 only).
    """
    from datetime import datetime

    from dppo_embodied.io import atomic_write_json, atomic_write_text
    from dppo_embodied.provenance import environment, timing

    evals = read_evals(out)
    by_tag = {e["tag"]: e for e in evals}
    tags = [e["tag"] for e in evals]
    curve = [{"step": t, "compute_s": by_tag[t]["compute_s"], "overall": by_tag[t]["heldout"]["overall"],
              "teacher_calls": by_tag[t].get("teacher_calls", 0),
              "sampled": (by_tag[t].get("heldout_sampled") or {}).get("overall"),
              "general": (by_tag[t]["general"] or {}).get("overall")} for t in tags]
    base, final = by_tag["base"]["heldout"], by_tag[tags[-1]]["heldout"]
    summary = {"scale": "0-100", "base": flat(base), "final": flat(final), "n_heldout": final["n"],
               "mode": run["mode"], "sampling": run["sampling"], "loops_done": run["loops_done"],
               "compute_s": run["compute_s"], "teacher_calls": run.get("teacher_calls", 0), "curve": curve,
               "general_replay": {"base": curve[0]["general"], "final": curve[-1]["general"]},
               "checkpoint": run.get("checkpoint"), "closing_rl": bool(run.get("closing_rl"))}
    if by_tag[tags[-1]].get("closed_loop") is not None:  # recipes with closed-loop tasks: success per environment
        summary["closed_loop"] = {"base": by_tag["base"].get("closed_loop"), "final": by_tag[tags[-1]]["closed_loop"]}
        for point, t in zip(curve, tags, strict=True):
            point["closed_loop"] = by_tag[t].get("closed_loop")
    if curve[-1]["sampled"] is not None:  # held-out pass@1 over sampled answers (eval.sampled_k)
        summary["sampled"] = {"base": curve[0]["sampled"], "final": curve[-1]["sampled"],
                              "k": by_tag[tags[-1]]["heldout_sampled"]["k"]}
    templates = per_template(out, "base", tags[-1])
    if templates:
        summary["per_template"] = templates
    sessions = list(run.get("sessions") or [])
    started = datetime.fromisoformat(sessions[0]["started"]).timestamp() if sessions else None
    summary["provenance"] = {**environment(), **(timing(started) if started is not None else {}),
                             "sessions": sessions,
                             "step_seconds": step_seconds(out)}
    if write:
        atomic_write_json(out / "summary.json", summary)
        atomic_write_text(out / "summary.md",
                          f"# {name}: held-out success (0-100)\n\n{before_after_table(base, final)}\n"
                          f"## After each phase\n\n{curve_table(curve)}"
                          + (f"\n## Per question template (held-out QA)\n\n{template_table(templates)}"
                             if templates else ""))
        plot_run(out / "curve.png", base, final, curve, title=f"{name} ({run['mode']})")
    return summary
