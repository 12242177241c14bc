"""The multi-seed ablation behind ``dppo train compare`` (protocol: docs/ablation.md).

Per seed ``s`` (``seed = data.seed = s``: a new candidate pool, held-out draw and training randomness):

1. ``seed<s>/base``: data and the shared base evaluated (``until="eval_base"``). The first seed also builds and
   pre-trains the base model; the other seeds start from that same checkpoint (the "pretrained VLM" is one model).
2. ``seed<s>/dppo`` runs from a copy of the base; its training compute C_s and teacher calls B_s become the
   budgets of the other variants (:func:`training.scripts.ablation_presets.budget_overrides`).
3. every other variant runs from its own copy of the same base with those budgets.

Runs go in-process (``jobs = 1``) or as ``jobs`` parallel ``python -m training.scripts.run`` subprocesses (one thread
each); each run is resumable, so ``--resume`` continues an interrupted comparison where it stopped. The report
(:mod:`training.scripts.ablation_report`) gives per-variant means with 95 % CIs over seeds and paired differences
DPPO − variant.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dppo_embodied.errors import TrainingError
from training.runs.state import atomic_write_json, read_json
from training.scripts.ablation_presets import Variant, budget_overrides

logger = logging.getLogger(__name__)


@dataclass
class Task:
    """One run of the comparison."""

    name: str
    folder: Path
    overrides: list[str]
    deps: list[str] = field(default_factory=list)
    base_of: str | None = None  # copy this base folder before the first start
    until: str | None = None


def seed_overrides(seed: int) -> list[str]:
    """Overrides of one replication: training seed and data seed."""
    return [f"seed={seed}", f"data.seed={seed}"]


def base_overrides(first_base: Path, seed: int, first_seed: int) -> list[str]:
    """Overrides of a seed's base: the first seed builds (and pre-trains) the model, the others load it."""
    if seed == first_seed:
        return seed_overrides(seed)
    state = read_json(first_base / "state.json", {}) or {}
    path = state.get("model_path")
    if not path:
        raise TrainingError(f"{first_base} has no base model yet; run the first seed's base first")
    model = Path(path) if Path(path).is_absolute() or not (first_base / path).exists() else first_base / path
    return [*seed_overrides(seed), "model.build_tiny=null", f"model.path={model.resolve()}", "pretrain.steps=0"]


def _copy_base(base: Path, run: Path) -> None:
    if not (run / "state.json").is_file():
        shutil.copytree(base, run, ignore=shutil.ignore_patterns("summary*", "curve.png", "runs", "*.log"),
                        dirs_exist_ok=True)


def run_task(config: str, task: Task, extra: list[str], progress: bool, jobs: int) -> subprocess.Popen | None:
    """Start one run: in-process (returns None when done) or as a subprocess (returns it)."""
    if task.base_of:
        _copy_base(Path(task.base_of), task.folder)
    overrides = [*extra, *task.overrides]
    if jobs <= 1:
        from training.metaloop import Metaloop
        from training.metaloop_config import load_metaloop_config

        cfg = load_metaloop_config(config, overrides, str(task.folder))
        Metaloop(cfg, resume=True, progress=progress).run(until=task.until)
        return None
    task.folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TRL_EXPERIMENTAL_SILENCE": "1"}
    # a variant resumes from its base's copied config.yaml and applies its own overrides (--override-config)
    cmd = [sys.executable, "-m", "training.scripts.run", "--config", config, "--output-dir", str(task.folder),
           "--resume", "--override-config", "--no-progress", *overrides, "threads=1"]
    if task.until:  # a base: stop after its evaluation; the first one (pre-training) runs alone, so it gets every core
        env["OMP_NUM_THREADS"] = str(jobs)
        cmd = [sys.executable, "-m", "training.scripts.ablation", config, str(task.folder), *overrides,
               f"threads={jobs}"]
    log = (task.folder / "run.log").open("a", encoding="utf-8")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)


def done(task: Task) -> bool:
    """True when the run finished (a base: evaluated; a variant: summary written)."""
    if task.until:
        return "eval_base" in (read_json(task.folder / "state.json", {}) or {}).get("completed", [])
    return (task.folder / "summary.json").is_file()


def schedule(config: str, tasks: list[Task], extra: list[str], jobs: int, progress: bool,
             prepare: Any = None) -> None:
    """Run ``tasks`` respecting their dependencies, at most ``jobs`` at a time.

    Args:
        config: recipe path.
        tasks: the runs (each names the tasks it depends on).
        extra: overrides for every run.
        jobs: parallel runs (1 = in-process, sequential).
        progress: progress bars (in-process runs).
        prepare: ``prepare(task)`` called just before a task starts (fills in budgets from finished runs).

    Raises:
        TrainingError: a run failed (its log is named).
    """
    pending = {t.name: t for t in tasks if not done(t)}
    finished = {t.name for t in tasks if done(t)}
    running: dict[str, subprocess.Popen] = {}
    while pending or running:
        ready = [t for t in pending.values() if all(d in finished for d in t.deps)]
        while ready and len(running) < max(1, jobs):
            t = ready.pop(0)
            del pending[t.name]
            if prepare:
                prepare(t)
            logger.info("compare: starting %s", t.name)
            proc = run_task(config, t, extra, progress, jobs)
            if proc is None:
                finished.add(t.name)
            else:
                running[t.name] = proc
        for name, proc in list(running.items()):
            rc = proc.poll()
            if rc is None:
                continue
            del running[name]
            if rc != 0:
                for p in running.values():
                    p.terminate()
                raise TrainingError(f"compare: run {name} failed (exit {rc}); see its run.log. Fix the cause and "
                                    "rerun with --resume")
            finished.add(name)
            logger.info("compare: %s done", name)
        if running:
            time.sleep(1.0)
        elif pending and not ready and not running and not any(
                all(d in finished for d in t.deps) for t in pending.values()):
            raise TrainingError(f"compare: unsatisfiable dependencies for {sorted(pending)}")


def plan(out: Path, seeds: list[int], variants: list[Variant]) -> list[Task]:
    """Tasks of the comparison (budgets are filled in when each task starts)."""
    tasks: list[Task] = []
    first = seeds[0]
    for s in seeds:
        base = out / f"seed{s}" / "base"
        tasks.append(Task(f"seed{s}/base", base, [], deps=[] if s == first else [f"seed{first}/base"],
                          until="eval_base"))
        for v in variants:
            deps = [f"seed{s}/base"] + ([] if v.name == "dppo" else [f"seed{s}/dppo"])
            tasks.append(Task(f"seed{s}/{v.name}", out / f"seed{s}" / v.name, list(v.overrides), deps,
                              base_of=str(base)))
    return tasks


def budgets_of(run: Path) -> tuple[float, int]:
    """DPPO's measured ``(compute_s, teacher_calls)`` from its summary."""
    s = read_json(run / "summary.json")
    if s is None:
        raise TrainingError(f"{run} has no summary.json; the DPPO run of this seed did not finish")
    return float(s["compute_s"]), int(s.get("teacher_calls", 0))


def make_preparer(out: Path, seeds: list[int], variants: dict[str, Variant], axis: str, cfg: Any,
                  compute_budget_s: float | None = None, loop_cap: int | None = None) -> Any:
    """The ``prepare`` hook of :func:`schedule`: seed overrides, base sharing and budgets.

    ``compute_budget_s`` fixes every run's compute budget (DPPO's too, its loop count unchanged); without it the
    matched variants get DPPO's measured compute of their seed. ``loop_cap``: most loops a matched variant may run
    (default: enough that the budget ends it).
    """
    first = seeds[0]

    def prepare(task: Task) -> None:
        seed_name, name = task.name.split("/")
        s = int(seed_name[4:])
        if name == "base":
            task.overrides = base_overrides(out / f"seed{first}" / "base", s, first)
            return
        if name == "dppo":
            extra = [f"compute_budget_s={compute_budget_s:.3f}"] if compute_budget_s is not None else []
        else:
            compute_s, teacher_calls = budgets_of(out / seed_name / "dppo")
            extra = budget_overrides(variants[name], axis, cfg, compute_s if compute_budget_s is None
                                     else compute_budget_s, teacher_calls, loop_cap)
        # the base's own overrides too: a variant resumes its base's config.yaml with --override-config
        task.overrides = [*task.overrides, *base_overrides(out / f"seed{first}" / "base", s, first), *extra]
        atomic_write_json(task.folder.parent / f"{name}.overrides.json", {"overrides": task.overrides})

    return prepare


def _base_main(argv: list[str]) -> int:
    """``python -m training.scripts.ablation CONFIG FOLDER [overrides]``: prepare and evaluate one base."""
    from dppo_embodied.logs import setup_logging
    from training.metaloop import Metaloop
    from training.metaloop_config import load_metaloop_config

    setup_logging()
    config, folder, *overrides = argv
    cfg = load_metaloop_config(config, overrides, folder)
    Metaloop(cfg, resume=True, progress=False).run(until="eval_base")
    return 0


if __name__ == "__main__":
    sys.exit(_base_main(sys.argv[1:]))
