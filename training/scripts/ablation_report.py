"""The report of a multi-seed comparison: ``compare.json``, ``compare.md`` and ``compare.png``.

``compare.json``::

    {"axis", "preset", "seeds", "variants_order",
     "variants": {name: {"final_mean", "final_ci95": [lo, hi] | null, "per_seed": {seed: final},
                         "compute_s", "teacher_calls", "general_mean", "base_mean", "rl": {...}, "curves": {...},
                         "loops": {seed: metaloops run}, "closing_rl": {seed: DPPO closed on an RL half-step}}},
     "paired": {"dppo-<name>": {"mean", "ci95": [lo, hi] | null, "per_seed", "n"}},
     "budgets": {seed: {"compute_s", "teacher_calls"}}, "compute_budget_s": fixed budget | null,
     "loop_cap": matched variants' loop cap | null, "wall_s"}

``final`` is held-out success after the run's last phase. The plot has two panels, held-out success against
training compute and against teacher calls, one band per variant (mean over seeds of each seed's step curve, with
the 95 % t-interval across seeds).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dppo_embodied.errors import TrainingError
from training.runs.state import read_json
from training.scripts.ablation_stats import ci_excludes_zero, mean_ci95, paired_difference, summarize_variant


def run_result(run: Path, metric: str = "greedy") -> dict[str, Any]:
    """One run's numbers: final success (``metric``: ``greedy`` or ``sampled``; the greedy figures always ride
    along as ``final_greedy``), budgets spent, general replay, RL-phase facts, the curve."""
    s = read_json(run / "summary.json")
    if s is None:
        raise FileNotFoundError(f"{run}/summary.json")
    state = read_json(run / "state.json", {}) or {}
    rl = [v for k, v in state.get("values", {}).items() if k.endswith("/rl")]
    evals = {k: v for k, v in state.get("values", {}).items() if k.endswith("/eval") or k.endswith("/eval_rl")}
    sampled = s.get("sampled")
    curve = s["curve"]
    if metric == "sampled":  # the primary metric of docs/ablation.md: held-out pass@1 over sampled answers
        if not sampled:
            raise TrainingError(f"{run}/summary.json has no sampled success; run with eval.sampled_k > 0 or "
                                "compare with --metric greedy")
        curve = [{**p, "overall": p["sampled"], "greedy": p["overall"]} for p in curve]
    final, base = (sampled["final"], sampled["base"]) if metric == "sampled" and sampled else \
        (s["final"]["overall"], s["base"]["overall"])
    return {
        "final": final, "base": base, "final_greedy": s["final"]["overall"], "base_greedy": s["base"]["overall"],
        "compute_s": s["compute_s"],
        "teacher_calls": s.get("teacher_calls", 0), "general": s["general_replay"]["final"],
        "general_base": s["general_replay"]["base"], "curve": curve,
        "loops": s["loops_done"], "closing_rl": bool(s.get("closing_rl")),
        "final_by_capability": {k: v for k, v in s["final"].items() if k != "overall"},
        "rl_phases": len(rl), "rl_stopped_early": sum(bool(v.get("stopped_early")) for v in rl),
        "frac_reward_zero_std": [v.get("frac_reward_zero_std") for v in rl], "evals": len(evals),
    }


def collect(out: Path, seeds: Sequence[int], names: Sequence[str], axis: str, preset: str | None,
            wall_s: float | None = None, metric: str = "greedy",
            compute_budget_s: float | None = None, loop_cap: int | None = None) -> dict[str, Any]:
    """Assemble ``compare.json`` from the finished runs under ``out`` (``final_*`` and ``paired`` on ``metric``;
    with ``sampled`` the greedy figures are reported beside them as ``greedy`` and ``paired_greedy``;
    ``compute_budget_s``: the fixed budget of every run, or None when the budgets were DPPO's measured compute;
    ``loop_cap``: the matched variants' loop cap, or None)."""
    results = {n: {s: run_result(out / f"seed{s}" / n, metric) for s in seeds} for n in names}
    variants: dict[str, Any] = {}
    for n in names:
        per = results[n]
        v = summarize_variant(per)
        v["base_mean"] = sum(r["base"] for r in per.values()) / len(per)
        v["general_base_mean"] = _mean([r["general_base"] for r in per.values()])
        v["rl"] = {"phases": sum(r["rl_phases"] for r in per.values()),
                   "stopped_early": sum(r["rl_stopped_early"] for r in per.values()),
                   "frac_reward_zero_std": _mean([z for r in per.values() for z in r["frac_reward_zero_std"]])}
        v["curves"] = {s: r["curve"] for s, r in per.items()}
        v["loops"] = {s: r["loops"] for s, r in per.items()}  # metaloops each seed's budget bought
        v["closing_rl"] = {s: r["closing_rl"] for s, r in per.items()}
        if metric != "greedy":
            g = summarize_variant({s: {"final": r["final_greedy"]} for s, r in per.items()})
            v["greedy"] = {"final_mean": g["final_mean"], "final_ci95": g["final_ci95"], "per_seed": g["per_seed"],
                           "base_mean": sum(r["base_greedy"] for r in per.values()) / len(per)}
        variants[n] = v
    paired = {f"dppo-{n}": paired_difference(variants["dppo"]["per_seed"], variants[n]["per_seed"])
              for n in names if n != "dppo"}
    budgets = {s: {"compute_s": results["dppo"][s]["compute_s"], "teacher_calls": results["dppo"][s]["teacher_calls"]}
               for s in seeds}
    res = {"axis": axis, "preset": preset, "metric": metric, "seeds": list(seeds), "variants_order": list(names),
           "variants": variants, "paired": paired, "budgets": budgets, "compute_budget_s": compute_budget_s,
           "loop_cap": loop_cap, "wall_s": wall_s}
    if metric != "greedy":
        res["paired_greedy"] = {f"dppo-{n}": paired_difference(variants["dppo"]["greedy"]["per_seed"],
                                                               variants[n]["greedy"]["per_seed"])
                                for n in names if n != "dppo"}
    return res


def _mean(xs: Sequence[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return sum(vals) / len(vals) if vals else None


def _ci(ci: Sequence[float] | None) -> str:
    return f"[{ci[0]:+.1f}, {ci[1]:+.1f}]" if ci else "n/a (1 seed)"


def _paired_rows(paired: dict[str, Any]) -> list[str]:
    rows = []
    for key, p in paired.items():
        per = ", ".join(f"{x:+.1f}" for x in p["per_seed"].values())
        rows.append(f"| {key} | {p['mean']:+.1f} | {_ci(p['ci95'])} | {per} | "
                    f"{'yes' if ci_excludes_zero(p['ci95']) else 'no'} |")
    return rows


def markdown(res: dict[str, Any]) -> str:
    """compare.md: the per-variant table and the paired differences."""
    n = len(res["seeds"])
    preset = f" (preset {res['preset']})" if res["preset"] else ""
    what = ("held-out pass@1 over sampled answers" if res.get("metric") == "sampled" else
            "held-out greedy success")
    lines = [f"Comparison on the **{res['axis']}** axis{preset}, {n} seed(s) {res['seeds']}; {what} (0-100) after "
             "the last phase, mean over seeds with the 95 % t-interval. Compute budget: "
             + (f"fixed, {res['compute_budget_s']:g} CPU s per run." if res.get("compute_budget_s") else
                "DPPO's measured compute of each seed.")
             + (f" Matched variants ran at most {res['loop_cap']} loops." if res.get("loop_cap") else ""), "",
             "| variant | final | 95 % CI | per seed | compute (CPU s) | teacher calls | loops | general replay | "
             "RL stops |", "|---|---:|---|---|---:|---:|---|---:|---:|"]
    for name in res["variants_order"]:
        v = res["variants"][name]
        ci = v["final_ci95"]
        ci_s = f"[{ci[0]:.1f}, {ci[1]:.1f}]" if ci else "n/a"
        per = ", ".join(f"{x:.1f}" for x in v["per_seed"].values())
        gen = f"{v['general_mean']:.1f}" if v.get("general_mean") is not None else "-"
        stops = f"{v['rl']['stopped_early']}/{v['rl']['phases']}" if v["rl"]["phases"] else "-"
        closing = v.get("closing_rl", {})  # "K+RL": K metaloops and DPPO's closing RL half-step
        loops = ", ".join(f"{x}+RL" if closing.get(s) else str(x) for s, x in v.get("loops", {}).items()) or "-"
        lines.append(f"| {name} | {v['final_mean']:.1f} | {ci_s} | {per} | {v['compute_s']:.0f} | "
                     f"{v['teacher_calls']:.0f} | {loops} | {gen} | {stops} |")
    lines += ["", "Paired differences (same seed: same data, base and held-out set):", "",
              "| difference | mean | 95 % CI | per seed | CI above 0 |", "|---|---:|---|---|---|"]
    lines += _paired_rows(res["paired"])
    if res.get("paired_greedy"):
        lines += ["", "Secondary metric, held-out greedy success (0-100): "
                  + ", ".join(f"{k} {v['greedy']['final_mean']:.1f}" for k, v in res["variants"].items()) + ".", "",
                  "| difference (greedy) | mean | 95 % CI | per seed | CI above 0 |", "|---|---:|---|---|---|"]
        lines += _paired_rows(res["paired_greedy"])
    if res.get("wall_s"):
        lines += ["", f"Wall time of the whole comparison: {res['wall_s'] / 60:.1f} min."]
    return "\n".join(lines) + "\n"


def _band(curves: Sequence[Sequence[dict[str, Any]]], key: str, grid: Sequence[float]) -> tuple[list, list, list]:
    """Mean and 95 % band over seeds of step curves (success held from each evaluation to the next)."""
    mean, lo, hi = [], [], []
    for x in grid:
        vals = []
        for c in curves:
            pts = [p for p in c if float(p.get(key) or 0) <= x + 1e-9]
            vals.append(pts[-1]["overall"] if pts else c[0]["overall"])
        m, ci = mean_ci95(vals)
        mean.append(m)
        lo.append(ci[0] if ci else m)
        hi.append(ci[1] if ci else m)
    return mean, lo, hi


def plot(path: Path, res: dict[str, Any]) -> Path:
    """compare.png: success against compute and against teacher calls, one band per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    for ax, key, label in ((axes[0], "compute_s", "training compute (CPU s)"),
                           (axes[1], "teacher_calls", "teacher calls")):
        xmax = max((float(p.get(key) or 0) for v in res["variants"].values() for c in v["curves"].values()
                    for p in c), default=1.0) or 1.0
        grid = [xmax * i / 100 for i in range(101)]
        for name in res["variants_order"]:
            curves = list(res["variants"][name]["curves"].values())
            m, lo, hi = _band(curves, key, grid)
            line, = ax.plot(grid, m, label=name, lw=1.8)
            ax.fill_between(grid, lo, hi, color=line.get_color(), alpha=0.15)
        ax.set_xlabel(label)
        ax.set_ylabel("held-out success")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{res['preset'] or 'compare'}: {len(res['seeds'])} seed(s), {res['axis']} axis")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
