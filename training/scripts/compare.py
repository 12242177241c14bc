"""``dppo train compare``: the pre-registered ablation (docs/ablation.md) over seeds, on two budget axes.

    dppo train compare --config training/recipes/ablation.yaml --seeds 3 [--axis compute|teacher]
        --output-dir DIR [--preset main|sampling|loops|stagnation|reward_noise|teacher] [--variants a,b,...]
        [--compute-budget-s S] [--jobs 2] [--resume] [--no-progress] [--dry-run] [key=value ...]

Per seed, DPPO runs first from a shared base; its training compute (CPU seconds of everything but evaluation) and
teacher calls (one per SFT target) become the budgets of the other variants: on the ``teacher`` axis both budgets
are DPPO's, on the ``compute`` axis only the compute. With ``--compute-budget-s S`` the compute budget is fixed in
advance instead: every run, DPPO included, may spend S CPU seconds (a budget that a protocol can write down, where
DPPO's measured seconds move with the machine and its load). Writes ``compare.json`` (per variant ``final_mean``,
``final_ci95``, ``per_seed``, ``compute_s``, ``teacher_calls``; ``paired`` ``dppo-<variant>`` ``mean`` / ``ci95``),
``compare.md`` and ``compare.png`` (success against compute and against teacher calls, a band per variant).
Variants and presets: :mod:`training.scripts.ablation_presets`; scheduling: :mod:`training.scripts.ablation`;
statistics: :mod:`training.scripts.ablation_stats`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from dppo_embodied.errors import DppoError

logger = logging.getLogger(__name__)


def make_parser() -> argparse.ArgumentParser:
    """Argument parser of ``dppo train compare``."""
    from training.scripts.ablation_presets import PRESETS, VARIANTS

    p = argparse.ArgumentParser(prog="dppo train compare", description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, help="recipe YAML (training/recipes/ablation.yaml)")
    p.add_argument("--output-dir", default="outputs/compare", help="folder of the comparison")
    p.add_argument("--seeds", type=int, default=3, help="replications (seeds 0..N-1; default 3)")
    p.add_argument("--first-seed", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--axis", choices=("compute", "teacher"), default=None,
                   help="budget matching: DPPO's compute, or DPPO's compute and teacher calls (default: the "
                        "preset's, else teacher)")
    p.add_argument("--preset", choices=sorted(PRESETS), default=None,
                   help="; ".join(f"{k}: {v.help}" for k, v in PRESETS.items()))
    p.add_argument("--variants", default=None,
                   help=f"comma-separated subset ({', '.join(VARIANTS)}; dppo always runs first)")
    p.add_argument("--metric", choices=("greedy", "sampled"), default="greedy",
                   help="the success compared: greedy, or pass@1 over sampled answers (needs eval.sampled_k > 0; "
                        "greedy is then reported beside it)")
    p.add_argument("--compute-budget-s", type=float, default=None,
                   help="a fixed compute budget (CPU s of training) for every run, DPPO included, instead of DPPO's "
                        "measured compute (teacher calls are still DPPO's on the teacher axis)")
    p.add_argument("--loop-cap", type=int, default=None,
                   help="most loops a budget-matched variant may run (default max(4K, 40): the budget ends it); "
                        "e.g. the recipe's K to compare loop for loop")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel (subprocesses, one thread each)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted comparison")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--dry-run", action="store_true",
                   help="validate the recipe and every variant, print what would run and its estimated time; run "
                        "nothing")
    p.add_argument("overrides", nargs="*", help="key=value recipe overrides for every run")
    return p


def compare(config: str, out: Path, seeds: list[int], axis: str | None = None, preset: str | None = None,
            variants: list[str] | None = None, overrides: list[str] | None = None, jobs: int = 1,
            resume: bool = False, progress: bool = True, dry_run: bool = False,
            metric: str = "greedy", compute_budget_s: float | None = None,
            loop_cap: int | None = None) -> dict[str, Any]:
    """Run (or resume) the comparison and return ``compare.json``'s content (the plan with ``dry_run``)."""
    from dppo_embodied.io import atomic_write_json, atomic_write_text
    from training.metaloop_config import load_metaloop_config
    from training.scripts import ablation, ablation_report
    from training.scripts.ablation_presets import resolve

    overrides = list(overrides or [])
    chosen, preset_axis = resolve(preset, variants)
    axis = axis or preset_axis or "teacher"
    cfg = load_metaloop_config(config, overrides, str(out / "plan"))  # validates the recipe and overrides
    for v in chosen:  # every variant's overrides must load too
        load_metaloop_config(config, [*overrides, *v.overrides], str(out / "plan"))
    plan_file = out / "compare_plan.json"
    if metric == "sampled" and cfg.eval.sampled_k < 1:
        raise DppoError("--metric sampled needs eval.sampled_k >= 1 in the recipe (answers sampled per question)")
    if compute_budget_s is not None and not compute_budget_s > 0:
        raise DppoError(f"--compute-budget-s must be > 0 CPU seconds, got {compute_budget_s}")
    if loop_cap is not None and loop_cap < 1:
        raise DppoError(f"--loop-cap must be >= 1 loop, got {loop_cap}")
    plan = {"config": str(config), "seeds": seeds, "axis": axis, "preset": preset, "metric": metric,
            "variants": [v.name for v in chosen], "overrides": overrides, "jobs": jobs}
    if compute_budget_s is not None:  # only when set: plans of earlier comparisons still resume
        plan["compute_budget_s"] = compute_budget_s
    if loop_cap is not None:
        plan["loop_cap"] = loop_cap
    if dry_run:
        return {"plan": plan, "variants": {v.name: {"overrides": list(v.overrides), "matching": v.matching,
                                                     "help": v.help} for v in chosen},
                **estimated_time(cfg, len(seeds), len(chosen), jobs)}
    old = json.loads(plan_file.read_text()) if plan_file.is_file() else None
    if old is not None and not resume:
        raise DppoError(f"{out} already holds a comparison; pass --resume to continue it or choose another "
                        "--output-dir")
    if old is not None and {k: v for k, v in old.items() if k != "jobs"} != {k: v for k, v in plan.items()
                                                                              if k != "jobs"}:
        raise DppoError(f"{plan_file} was made with other settings ({old}); use a new --output-dir")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(plan_file, plan)
    t0 = time.time()
    tasks = ablation.plan(out, seeds, chosen)
    by_name = {v.name: v for v in chosen}
    ablation.schedule(config, tasks, overrides, jobs, progress,
                      prepare=ablation.make_preparer(out, seeds, by_name, axis, cfg, compute_budget_s,
                                                                 loop_cap))
    # wall time of this invocation (a resumed comparison reports the part it ran)
    res = ablation_report.collect(out, seeds, [v.name for v in chosen], axis, preset, wall_s=time.time() - t0,
                                 metric=metric, compute_budget_s=compute_budget_s, loop_cap=loop_cap)
    atomic_write_json(out / "compare.json", res)
    atomic_write_text(out / "compare.md", ablation_report.markdown(res))
    ablation_report.plot(out / "compare.png", res)
    return res


def estimated_time(cfg: Any, seeds: int, variants: int, jobs: int) -> dict[str, Any]:
    """The comparison's estimated wall time (:mod:`training.scripts.estimate`): per seed one shared start (prepare,
    base evaluation) and one DPPO-sized run per variant (the baselines spend DPPO's budget), over ``jobs``; the
    base model is pre-trained once, by the first seed, alone."""
    from training.scripts.estimate import estimate, minutes

    shared, full = estimate(cfg, loops=0), estimate(cfg)
    if shared["total_s"] is None or full["total_s"] is None:
        return {"estimated_time_s": None, "estimated_time": minutes(None), "basis": full["basis"]}
    pretrain_s = shared["steps"].get("pretrain", 0.0)
    loop_s = full["total_s"] - shared["total_s"]
    per_seed = shared["total_s"] - pretrain_s + variants * loop_s
    total = round(pretrain_s + seeds * per_seed / max(1, jobs), 1)
    return {"estimated_time_s": total, "estimated_time": minutes(total), "basis": full["basis"]}


def main(argv: list[str] | None = None) -> int:
    """``dppo train compare``."""
    import json
    import os

    from dppo_embodied.logs import setup_logging
    from training.scripts.ablation_report import markdown

    args = make_parser().parse_args(argv)
    setup_logging()
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    if args.seeds < 1 or args.jobs < 1:
        print("dppo train compare: --seeds and --jobs must be >= 1", file=sys.stderr)
        return 2
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    names = [v.strip() for v in args.variants.split(",") if v.strip()] if args.variants else None
    try:
        res = compare(args.config, Path(args.output_dir), seeds, args.axis, args.preset, names, args.overrides,
                      args.jobs, args.resume, not args.no_progress, args.dry_run, args.metric,
                      args.compute_budget_s, args.loop_cap)
    except DppoError as e:
        print(f"dppo train compare: {e}", file=sys.stderr)
        return 1
    if args.dry_run:
        print(json.dumps(res, indent=2))
        return 0
    print(markdown(res))
    print(f"wrote {args.output_dir}/compare.json, compare.md, compare.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
