"""Settings of one ``dppo eval run`` and where its data and processes are (shared by every kind of task)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.data import download_command
from benchmarks.task import TaskSpec
from dppo_embodied.errors import ConfigError
from dppo_embodied.io import rank_world_from_env as dist_info
from dppo_embodied.prompts import check_prompt_style

__all__ = ["RunSettings", "dataset_root", "dist_info", "missing_datasets", "parse_data_paths", "progress_bar"]
# dist_info: (rank, world_size) from RANK/WORLD_SIZE, the core's rank_world_from_env (name kept for the runner)


@dataclass
class RunSettings:
    """Settings of one ``dppo eval run``.

    Attributes:
        out: output folder.
        data_root: folder holding one dataset folder per task (named by the task), unless ``data_paths`` says.
        data_paths: task -> the task's own dataset folder (``--data TASK=DIR``, or ``data_paths:`` in a config).
        limit: keep the first N docs of each task.
        frames: video frames sampled per clip.
        max_new_tokens: overrides every task's generation cap.
        scorer_options: task -> scorer option overrides (named variants).
        progress: show progress bars.
        merge_timeout_s: how long rank 0 waits for the other ranks.
        model: model name for the results file.
        backend: backend name for the results file.
        step_prompt: the closed-loop step prompt style of the evaluated checkpoint (``full`` or ``compact``);
            ``None``: the style recorded in the backend's model folder (``full`` when none is).
        parallel_episodes: closed-loop episodes run at once (each with its own env instance).
        started: when the run started (``time.time()``; ``results.json`` records start, end and duration).
        task_started: task -> when its generation started (each task's ``duration_s``).
    """

    out: Path
    data_root: Path | None = None
    data_paths: dict[str, str] = field(default_factory=dict)
    limit: int | None = None
    frames: int = 32
    max_new_tokens: int | None = None
    scorer_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    progress: bool = True
    merge_timeout_s: float = 86400.0
    model: str = ""
    backend: str = ""
    step_prompt: str | None = None
    parallel_episodes: int = 8
    started: float = field(default_factory=time.time)
    task_started: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"--limit must be >= 1, got {self.limit}")
        if self.frames < 1:
            raise ConfigError(f"--frames must be >= 1, got {self.frames}")
        if self.step_prompt is not None:
            check_prompt_style(self.step_prompt)
        if self.parallel_episodes < 1:
            raise ConfigError(f"--parallel-episodes must be >= 1, got {self.parallel_episodes}")


def dataset_root(spec: TaskSpec, settings: RunSettings) -> Path:
    """Where a task's dataset folder is: ``data_paths[task]``, else ``<data_root>/<task>``."""
    if spec.task in settings.data_paths:
        return Path(settings.data_paths[spec.task]).expanduser()
    if settings.data_root is None:
        raise ConfigError(f"{spec.task}: no dataset folder; pass --data {spec.task}=DIR (the dataset's own folder) "
                          f"or --data-root DIR (a folder holding {spec.task}/)")
    return Path(settings.data_root).expanduser() / spec.task


def parse_data_paths(items: list[str] | None) -> dict[str, str]:
    """``["tabletop_qa=data/heldout"]`` (``--data``, repeatable) -> ``{"tabletop_qa": "data/heldout"}``.

    Raises:
        ConfigError: an item that is not ``TASK=DIR``.
    """
    out: dict[str, str] = {}
    for item in items or []:
        task, sep, path = item.partition("=")
        if not sep or not task.strip() or not path.strip():
            raise ConfigError(f"--data {item!r} must look like TASK=DIR (e.g. tabletop_qa=data/heldout)")
        out[task.strip()] = path.strip()
    return out


def how_to_get(spec: TaskSpec, root: Path) -> str:
    """The command that puts a task's dataset in ``root``."""
    if spec.dataset_id:
        return download_command(spec.dataset_id, root)
    if spec.adapter == "tabletop_qa":
        return f"dppo data generate --suite tabletop-qa --n 300 --split heldout --out {root}"
    return f"put a folder of {spec.layout or 'the task files'} there"


def missing_datasets(specs: list[TaskSpec], settings: RunSettings) -> list[str]:
    """One line per selected task whose dataset folder is absent or empty (closed-loop suites need none), each with
    the command that gets it; checked before any model is loaded, all at once. ``data_paths`` naming a task that is
    not selected is reported too (a typo would otherwise be ignored)."""
    selected = {s.task for s in specs}
    lines = [f"--data {task}=...: {task} is not among the selected tasks ({', '.join(sorted(selected))})"
             for task in settings.data_paths if task not in selected]
    under_root: list[str] = []
    for spec in specs:
        if spec.media == "env":
            continue
        try:
            root = dataset_root(spec, settings)
        except ConfigError as e:
            lines.append(str(e))
            continue
        if spec.adapter == "tabletop_qa" and root.is_file() and root.suffix == ".jsonl":
            continue
        if not root.is_dir():
            lines.append(f"{spec.task}: {root} is missing; get it with: {how_to_get(spec, root)}")
            if spec.task not in settings.data_paths:
                under_root.append(spec.task)
        elif not any(root.iterdir()):
            lines.append(f"{spec.task}: {root} is empty; get it with: {how_to_get(spec, root)}")
        elif spec.adapter == "tabletop_qa" and not any(root.rglob("*.jsonl")):
            lines.append(f"{spec.task}: {root} holds no *.jsonl sample files; get them with: "
                         f"{how_to_get(spec, root)}")
    if under_root and settings.data_root is not None and settings.data_root.is_dir() \
            and any(settings.data_root.iterdir()):
        task = under_root[0]
        lines.append(f"(--data-root is the folder holding one folder per task, {settings.data_root}/{task}; if "
                     f"{settings.data_root} is the {task} dataset itself, pass --data {task}={settings.data_root})")
    return lines


def progress_bar(total: int, desc: str, enabled: bool) -> Any:
    """A tqdm bar over ``total`` samples (disabled when not ``enabled``)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="sample", disable=not enabled, dynamic_ncols=True,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}]")
