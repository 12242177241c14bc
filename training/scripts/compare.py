"""``dppo train compare``: ablations at equal compute — DPPO against GRPO-only and SFT-only (and random sampling).

    dppo train compare --config training/recipes/demo.yaml --output-dir outputs/compare [--target 0.45]
        [--variants dppo,dppo_random,grpo_only,sft_only] [key=value ...]

1. One shared start: data, model and (optional) pre-training are prepared once and evaluated (``base/``).
2. ``dppo`` runs its ``loops`` from that start; its training compute (CPU seconds of rollouts, SR estimation,
   diagnosis, GRPO and SFT; evaluation excluded) becomes the budget C.
3. Every other variant starts from a copy of the same base and runs until it has spent C (``compute_budget_s``;
   ``loops`` is raised so that the budget, not the loop count, ends it).
4. Held-out success is recorded after every phase; the table reports final and best success, and the compute each
   variant needed to reach the target (default: base + 3/4 of DPPO's gain), with the ratio to DPPO's.

Writes ``compare.json``, ``compare.md`` and ``compare.png`` (held-out success against compute).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path
from typing import Any

from dppo_embodied.errors import DppoError
from training.runs import report

logger = logging.getLogger(__name__)

#: variant -> recipe overrides
VARIANTS: dict[str, list[str]] = {
    "dppo": ["mode=dppo", "sampling=difficulty"],
    "dppo_random": ["mode=dppo", "sampling=random"],
    "grpo_only": ["mode=grpo_only", "sampling=difficulty"],
    "sft_only": ["mode=sft_only"],
}


def make_parser() -> argparse.ArgumentParser:
    """Argument parser of ``dppo train compare``."""
    p = argparse.ArgumentParser(prog="dppo train compare", description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, help="recipe YAML")
    p.add_argument("--output-dir", default="outputs/compare", help="folder of the comparison")
    p.add_argument("--variants", default="dppo,dppo_random,grpo_only,sft_only",
                   help=f"comma-separated subset of {', '.join(VARIANTS)} (dppo always runs first)")
    p.add_argument("--target", type=float, default=None, help="held-out success target (default: base + 3/4 gain)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted comparison")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--dry-run", action="store_true",
                   help="validate the recipe and every variant, print what would run and its estimated time; run "
                        "nothing")
    p.add_argument("overrides", nargs="*", help="key=value recipe overrides for every variant")
    return p


def compare(config: str, out: Path, variants: list[str], overrides: list[str], target: float | None = None,
            resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Run the comparison and return ``{"target", "budget_s", "variants": {name: {...}}}``."""
    from dppo_embodied.io import atomic_write_json, atomic_write_text
    from training.metaloop import Metaloop
    from training.metaloop_config import load_metaloop_config

    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise DppoError(f"unknown variant(s) {unknown}; valid: {', '.join(VARIANTS)}")
    variants = ["dppo"] + [v for v in variants if v != "dppo"]
    base_dir = out / "base"
    base_cfg = load_metaloop_config(config, overrides, str(base_dir))
    Metaloop(base_cfg, resume=resume or (base_dir / "state.json").is_file(), progress=progress).run(until="eval_base")

    results: dict[str, Any] = {}
    budget = 0.0
    for name in variants:
        run_dir = out / name
        extra = list(VARIANTS[name])
        if name != "dppo":
            extra += [f"compute_budget_s={budget}", f"loops={max(base_cfg.loops * 4, 40)}"]
        cfg = load_metaloop_config(config, [*overrides, *extra], str(run_dir))
        if not (run_dir / "state.json").is_file():
            shutil.copytree(base_dir, run_dir, ignore=shutil.ignore_patterns("summary*", "curve.png", "runs"))
        logger.info("compare: running %s%s", name, f" (budget {budget:.0f} s)" if name != "dppo" else "")
        summary = Metaloop(cfg, resume=True, progress=progress).run()
        if name == "dppo":
            budget = float(summary["compute_s"])
        results[name] = summary
    base_overall = results["dppo"]["base"]["overall"]
    if target is None:
        target = round(base_overall + 0.75 * (results["dppo"]["final"]["overall"] - base_overall), 3)
    dppo_reach = report.compute_to_reach(results["dppo"]["curve"], target)
    table: dict[str, Any] = {}
    for name, s in results.items():
        reach = report.compute_to_reach(s["curve"], target)
        table[name] = {
            "final": s["final"]["overall"], "best": max(p["overall"] for p in s["curve"]),
            "compute_s": s["compute_s"], "loops": s["loops_done"], "compute_to_target_s": reach,
            "ratio_to_dppo": (reach / dppo_reach) if reach and dppo_reach else None,
            "general_final": s["general_replay"]["final"], "curve": s["curve"],
            "frac_reward_zero_std": _zero_std(out / name),
        }
    res = {"target": target, "budget_s": budget, "base": base_overall, "n_heldout": results["dppo"]["n_heldout"],
           "variants": table}
    atomic_write_json(out / "compare.json", res)
    atomic_write_text(out / "compare.md", markdown(res))
    report.plot_compare(out / "compare.png", {n: t["curve"] for n, t in table.items()}, target)
    return res


def _zero_std(run_dir: Path) -> float | None:
    from dppo_embodied.io import read_json

    vals = [v.get("frac_reward_zero_std") for k, v in (read_json(run_dir / "state.json", {}) or {}).get(
        "values", {}).items() if k.endswith("/rl") and v.get("frac_reward_zero_std") is not None]
    return sum(vals) / len(vals) if vals else None


def markdown(res: dict[str, Any]) -> str:
    """The comparison table in Markdown."""
    lines = [f"Held-out success (0-100, n = {res['n_heldout']}), base {res['base']:.1f}; equal compute budget "
             f"{res['budget_s']:.0f} CPU s; target {res['target']:.1f}.", "",
             "| variant | loops | compute (s) | final | best | compute to target (s) | vs DPPO | zero-std groups |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, t in res["variants"].items():
        reach = f"{t['compute_to_target_s']:.0f}" if t["compute_to_target_s"] is not None else "not reached"
        ratio = f"{t['ratio_to_dppo']:.2f}x" if t["ratio_to_dppo"] is not None else "-"
        zs = f"{t['frac_reward_zero_std']:.2f}" if t["frac_reward_zero_std"] is not None else "-"
        lines.append(f"| {name} | {t['loops']} | {t['compute_s']:.0f} | {t['final']:.1f} | {t['best']:.1f} | "
                     f"{reach} | {ratio} | {zs} |")
    return "\n".join(lines) + "\n"


def plan_comparison(config: str, out: Path, variants: list[str], overrides: list[str]) -> dict[str, Any]:
    """What :func:`compare` would run (every variant's recipe loaded and checked) and its estimated time."""
    from training.metaloop_config import load_metaloop_config
    from training.scripts.estimate import estimate, minutes

    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise DppoError(f"unknown variant(s) {unknown}; valid: {', '.join(VARIANTS)}")
    variants = ["dppo"] + [v for v in variants if v != "dppo"]
    base_cfg = load_metaloop_config(config, overrides, str(out / "base"))
    shared = estimate(base_cfg, loops=0)
    dppo = estimate(load_metaloop_config(config, [*overrides, *VARIANTS["dppo"]], str(out / "dppo")))
    runs: dict[str, Any] = {}
    for name in variants:
        load_metaloop_config(config, [*overrides, *VARIANTS[name]], str(out / name))  # every variant must load
        runs[name] = {"overrides": VARIANTS[name], "runs": f"{base_cfg.loops} loops" if name == "dppo" else
                      "until it has spent DPPO's training compute"}
    loop_s = None if dppo["total_s"] is None else dppo["total_s"] - shared["total_s"]
    total = None if loop_s is None else round(shared["total_s"] + len(variants) * loop_s, 1)
    return {"config": config, "output_dir": str(out), "shared_start": "prepare, pretrain, eval_base (once)",
            "variants": runs, "estimated_time_s": total, "estimated_time": minutes(total), "basis": dppo["basis"]}


def main(argv: list[str] | None = None) -> int:
    """``dppo train compare``."""
    import json
    import os

    from dppo_embodied.logs import setup_logging

    args = make_parser().parse_args(argv)
    setup_logging()
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    if args.dry_run:
        try:
            res = plan_comparison(args.config, Path(args.output_dir),
                                  [v.strip() for v in args.variants.split(",") if v.strip()], args.overrides)
        except DppoError as e:
            print(f"dppo train compare: {e}", file=sys.stderr)
            return 1
        print(json.dumps(res, indent=2))
        return 0
    try:
        res = compare(args.config, Path(args.output_dir), [v.strip() for v in args.variants.split(",") if v.strip()],
                      args.overrides, args.target, args.resume, not args.no_progress)
    except DppoError as e:
        print(f"dppo train compare: {e}", file=sys.stderr)
        return 1
    print(markdown(res))
    print(f"wrote {args.output_dir}/compare.json, compare.md, compare.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
