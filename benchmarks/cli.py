"""``dppo eval``: run benchmarks, re-score another harness's responses, report and compare runs.

    dppo eval run --model M --backend hf|openai|vllm|fake --tasks T1,T2|GROUP --data-root DIR --out OUT
                  [--data TASK=DIR] [--limit N] [--frames 32] [--concurrency 8] [--base-url URL]
                  [--option task.key=value]
    dppo eval score --task T --data-root DIR|--data T=DIR --responses FILE --out OUT [--option key=value]
    dppo eval check --tasks T1,T2|GROUP --data-root DIR [--data TASK=DIR]
    dppo eval report OUT [--compare OUT2] [--data-root DIR]
    dppo eval tasks

``--data-root`` means the same everywhere: a folder holding one dataset folder per task, named by the task
(``DIR/vsibench``). ``--data TASK=DIR`` (repeatable) gives one task's own dataset folder instead (e.g.
``--data tabletop_qa=data/heldout``); a config file (``--config run.yaml``, the keys of the flags) may give them as
``data_paths: {task: folder}``, and ``scorer_options: {task: {key: value}}``. ``run`` checks every dataset before it
loads a model and lists all the missing ones with the command that gets each. Scorer variants (lmms-eval /
VLMEvalKit rules) are ``--option`` values, e.g. ``--option blink.aggregation=micro``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from benchmarks.settings import RunSettings, dataset_root, missing_datasets, parse_data_paths
from dppo_embodied.config import from_dict, load_yaml
from dppo_embodied.errors import ConfigError, DataError, DppoError
from dppo_embodied.logs import setup_logging
from dppo_embodied.model_ref import check_model_ref

logger = logging.getLogger(__name__)


@dataclass
class EvalRunConfig:
    """Settings of ``dppo eval run`` (flags override the ``--config`` file)."""

    model: str = ""
    backend: str = "hf"
    tasks: str = ""
    out: str = ""
    data_root: str | None = None
    data_paths: dict[str, str] = field(default_factory=dict)
    limit: int | None = None
    frames: int = 32
    max_new_tokens: int | None = None
    concurrency: int = 8
    batch_size: int = 8
    base_url: str = "http://127.0.0.1:8000/v1"
    dtype: str = "auto"
    device: str = "auto"
    include_paths: list[str] = field(default_factory=list)
    scorer_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    backend_options: dict[str, Any] = field(default_factory=dict)
    progress: bool = True
    step_prompt: str | None = None
    parallel_episodes: int = 8

    def __post_init__(self) -> None:
        for name in ("model", "tasks", "out"):
            if not getattr(self, name):
                raise ConfigError(f"dppo eval run needs --{name.replace('_', '-')} (or `{name}:` in --config)")


def _parse_options(items: list[str] | None, scoped: bool) -> dict[str, Any]:
    """``["blink.aggregation=micro"]`` -> ``{"blink": {"aggregation": "micro"}}`` (``scoped``) or flat."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--option {item!r} must look like {'task.key' if scoped else 'key'}=value")
        value = yaml.safe_load(raw) if raw else ""
        if scoped:
            task, dot, name = key.partition(".")
            if not dot:
                raise ConfigError(f"--option {item!r} must name the task: TASK.KEY=VALUE "
                                  "(e.g. blink.aggregation=micro)")
            out.setdefault(task, {})[name] = value
        else:
            out[key] = value
    return out


def make_parser() -> argparse.ArgumentParser:
    """The ``dppo eval`` argument parser."""
    p = argparse.ArgumentParser(prog="dppo eval", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run tasks with a model and score them")
    r.add_argument("--config", help="YAML file with the same keys as the flags (plus data_paths, scorer_options)")
    r.add_argument("--model", help="checkpoint folder (hf, vllm), served model name (openai) or replay file (fake)")
    r.add_argument("--backend", choices=["hf", "openai", "vllm", "fake"])
    r.add_argument("--tasks", help="comma-separated tasks, groups (pelican) or <task>_<subtask> names")
    r.add_argument("--data-root", help="folder holding one dataset folder per task, named by the task")
    r.add_argument("--data", action="append", metavar="TASK=DIR",
                   help="a task's own dataset folder, e.g. tabletop_qa=data/heldout (repeatable)")
    r.add_argument("--out", help="output folder (re-running the same command resumes)")
    r.add_argument("--limit", type=int, help="first N samples of each task")
    r.add_argument("--frames", type=int, help="video frames sampled per clip (default 32)")
    r.add_argument("--max-new-tokens", type=int, help="override every task's generation cap")
    r.add_argument("--parallel-episodes", type=int,
                   help="closed-loop episodes run at once, each with its own env instance (default 8)")
    r.add_argument("--step-prompt", choices=["full", "compact"],
                   help="closed-loop step prompt style of the model (default: the one recorded in the model folder, "
                        "else full); needed for a served model trained with compact")
    r.add_argument("--concurrency", type=int, help="openai: parallel requests (default 8)")
    r.add_argument("--batch-size", type=int, help="hf: batch size (default 8)")
    r.add_argument("--base-url", help="openai: API root with /v1 (default http://127.0.0.1:8000/v1)")
    r.add_argument("--dtype", help="hf: float32, bfloat16, float16 or auto")
    r.add_argument("--device", help="hf: auto, cpu, cuda:0 ...")
    r.add_argument("--include-path", action="append", help="extra folder of task YAML files")
    r.add_argument("--option", action="append", metavar="TASK.KEY=VALUE", help="scorer option (named variants)")
    r.add_argument("--no-progress", action="store_true", help="no progress bars")
    r.add_argument("-v", "--verbose", action="count", default=0)
    s = sub.add_parser("score", help="score an existing responses file (JSONL of {id, response}) officially")
    s.add_argument("--task", required=True)
    s.add_argument("--data-root", help="folder holding one dataset folder per task, named by the task")
    s.add_argument("--data", action="append", metavar="TASK=DIR", help="the task's own dataset folder")
    s.add_argument("--responses", required=True, help="JSONL of {\"id\": ..., \"response\": ...}")
    s.add_argument("--out", required=True)
    s.add_argument("--option", action="append", metavar="KEY=VALUE", help="scorer option (named variants)")
    s.add_argument("--allow-missing", action="store_true",
                   help="leave samples without a response out of the denominator (default: they count as failed)")
    s.add_argument("--include-path", action="append")
    s.add_argument("-v", "--verbose", action="count", default=0)
    rep = sub.add_parser("report", help="capability table, radar plot, weakest subtasks, diff with another run, "
                         "and the self-contained results page report.html")
    rep.add_argument("out", help="an output folder of `dppo eval run` or `score`")
    rep.add_argument("--compare", help="another output folder to diff against")
    rep.add_argument("--top", type=int, default=10, help="how many weakest subtasks to list")
    rep.add_argument("--data-root", help="folder holding one dataset folder per task: thumbnails on report.html")
    rep.add_argument("--thumbnails", type=int, default=60, metavar="N",
                     help="samples per task with thumbnails on report.html (default 60; 0 = none)")
    rep.add_argument("-v", "--verbose", action="count", default=0)
    c = sub.add_parser("check", help="check that the datasets of tasks are in place (no model is loaded)")
    c.add_argument("--tasks", required=True, help="comma-separated tasks or groups (pelican)")
    c.add_argument("--data-root", help="folder holding one dataset folder per task, named by the task")
    c.add_argument("--data", action="append", metavar="TASK=DIR", help="a task's own dataset folder (repeatable)")
    c.add_argument("--include-path", action="append")
    c.add_argument("-v", "--verbose", action="count", default=0)
    sub.add_parser("tasks", help="list tasks, groups and subtasks")
    return p


def _run_config(args: argparse.Namespace) -> EvalRunConfig:
    data: dict[str, Any] = load_yaml(args.config) if args.config else {}
    flags = {"model": args.model, "backend": args.backend, "tasks": args.tasks, "data_root": args.data_root,
             "out": args.out, "limit": args.limit, "frames": args.frames, "max_new_tokens": args.max_new_tokens,
             "concurrency": args.concurrency, "batch_size": args.batch_size, "base_url": args.base_url,
             "dtype": args.dtype, "device": args.device, "step_prompt": args.step_prompt,
             "parallel_episodes": args.parallel_episodes}
    data.update({k: v for k, v in flags.items() if v is not None})
    if args.include_path:
        data["include_paths"] = [*data.get("include_paths", []), *args.include_path]
    if args.data:
        data["data_paths"] = {**data.get("data_paths", {}), **parse_data_paths(args.data)}
    for task, opts in _parse_options(args.option, scoped=True).items():
        data.setdefault("scorer_options", {}).setdefault(task, {}).update(opts)
    if args.no_progress:
        data["progress"] = False
    return from_dict(EvalRunConfig, data, source=args.config or "command line")


def cmd_run(args: argparse.Namespace) -> int:
    """``dppo eval run``."""
    from benchmarks.backends import make_backend
    from benchmarks.runner import dist_info, run
    from benchmarks.task import TaskManager

    cfg = _run_config(args)
    selections = TaskManager(cfg.include_paths).resolve(cfg.tasks)
    for task in cfg.scorer_options:
        if task not in {s.spec.task for s in selections}:
            raise ConfigError(f"scorer options given for {task!r}, which is not among the selected tasks")
    settings = RunSettings(out=Path(cfg.out), data_root=Path(cfg.data_root) if cfg.data_root else None,
                           data_paths=cfg.data_paths, limit=cfg.limit, frames=cfg.frames,
                           max_new_tokens=cfg.max_new_tokens, scorer_options=cfg.scorer_options,
                           progress=cfg.progress, model=cfg.model, backend=cfg.backend, step_prompt=cfg.step_prompt,
                           parallel_episodes=cfg.parallel_episodes)
    _require_datasets([s.spec for s in selections], settings)  # before the model loads
    if cfg.backend in ("hf", "vllm"):
        check_model_ref(cfg.model)
    kwargs: dict[str, Any] = dict(cfg.backend_options)
    if cfg.backend == "openai":
        kwargs.update(base_url=cfg.base_url, concurrency=cfg.concurrency)
    elif cfg.backend == "hf":
        kwargs.update(batch_size=cfg.batch_size, dtype=cfg.dtype, device=cfg.device)
    backend = make_backend(cfg.backend, cfg.model, **kwargs)
    try:
        results = run(selections, backend, settings)
    finally:
        backend.close()
    if dist_info()[0] == 0:
        for task, e in results.items():
            score = "-" if e.get("overall") is None else f"{e['overall']:.2f}"
            print(f"{task:24s} {e.get('metric', ''):16s} {score:>8s}  n={e.get('n')} failed={e.get('n_failed')}")
        print(f"results: {settings.out / 'results.json'}")
    return 0


def _require_datasets(specs: list[Any], settings: Any) -> None:
    """Raise one :class:`DataError` listing every missing dataset and how to get it."""
    missing = missing_datasets(specs, settings)
    if missing:
        n = sum(not line.startswith("(") for line in missing)
        raise DataError(f"{n} dataset(s) missing:\n  " + "\n  ".join(missing))


def cmd_check(args: argparse.Namespace) -> int:
    """``dppo eval check``: every selected task's dataset in place (exit 1 with the list of missing ones)."""
    from benchmarks.task import TaskManager

    specs = [s.spec for s in TaskManager(args.include_path or []).resolve(args.tasks)]
    settings = RunSettings(out=Path("."), data_root=Path(args.data_root) if args.data_root else None,
                           data_paths=parse_data_paths(args.data))
    _require_datasets(specs, settings)
    print(f"dppo eval check: the datasets of {len(specs)} task(s) are in place "
          f"({', '.join(s.task for s in specs)})")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    """``dppo eval score``."""
    from benchmarks.rescore import score_responses, summary_lines
    from benchmarks.task import TaskManager

    sels = TaskManager(args.include_path or []).resolve(args.task)
    if len(sels) != 1:
        raise ConfigError(f"--task takes one task (or <task>_<subtask> names of one task), got {args.task!r}")
    spec = sels[0].spec
    settings = RunSettings(out=Path(args.out), data_root=Path(args.data_root) if args.data_root else None,
                           data_paths=parse_data_paths(args.data))
    _require_datasets([spec], settings)
    root = dataset_root(spec, settings)
    entry = score_responses(spec, root, Path(args.responses), Path(args.out),
                            _parse_options(args.option, scoped=False), sels[0].subtasks, args.allow_missing)
    for line in summary_lines(spec.task, entry):
        print(f"dppo eval score: {line}", file=sys.stderr)
    keys = ("metric", "overall", "subtasks", "n", "n_scored", "n_excluded", "n_failed")
    print(json.dumps({**{k: entry.get(k) for k in keys}, "denominator": entry["responses"]["denominator"]}, indent=2))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """``dppo eval report``."""
    from benchmarks.report import write_report

    paths = write_report(Path(args.out), Path(args.compare) if args.compare else None, top=args.top,
                         data_root=Path(args.data_root) if args.data_root else None, thumbs_per_task=args.thumbnails)
    print(paths["markdown"].read_text(encoding="utf-8"))
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0


def cmd_tasks() -> int:
    """``dppo eval tasks``."""
    from benchmarks.task import catalogue

    rows = catalogue()
    width = max(len(n) for n, _ in rows)
    for name, help_ in rows:
        print(f"{name:<{width}}  {help_}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``dppo eval`` (returns the exit code)."""
    args = make_parser().parse_args(argv)
    setup_logging(getattr(args, "verbose", 0))
    try:
        if args.command == "run":
            return cmd_run(args)
        if args.command == "score":
            return cmd_score(args)
        if args.command == "report":
            return cmd_report(args)
        if args.command == "check":
            return cmd_check(args)
        return cmd_tasks()
    except DppoError as e:
        print(f"dppo eval {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
