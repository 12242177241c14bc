"""Settings of one ``dppo eval run`` and where its data and processes are (shared by every kind of task)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.task import TaskSpec
from dppo_embodied.errors import ConfigError
from dppo_embodied.io import rank_world_from_env as dist_info
from dppo_embodied.prompts import check_prompt_style

__all__ = ["RunSettings", "dataset_root", "dist_info", "progress_bar"]
# dist_info: (rank, world_size) from RANK/WORLD_SIZE, the core's rank_world_from_env (name kept for the runner)


@dataclass
class RunSettings:
    """Settings of one ``dppo eval run``.

    Attributes:
        out: output folder.
        data_root: folder holding one dataset folder per task (named by the task), unless ``data_paths`` says.
        data_paths: task -> dataset folder (from a config file).
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

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"--limit must be >= 1, got {self.limit}")
        if self.frames < 1:
            raise ConfigError(f"--frames must be >= 1, got {self.frames}")
        if self.step_prompt is not None:
            check_prompt_style(self.step_prompt)


def dataset_root(spec: TaskSpec, settings: RunSettings) -> Path:
    """Where a task's dataset folder is: ``data_paths[task]``, else ``<data_root>/<task>``."""
    if spec.task in settings.data_paths:
        return Path(settings.data_paths[spec.task]).expanduser()
    if settings.data_root is None:
        raise ConfigError(f"task {spec.task}: no dataset folder; pass --data-root DIR (holding {spec.task}/) or "
                          f"set data_paths.{spec.task} in the config file")
    return Path(settings.data_root).expanduser() / spec.task


def progress_bar(total: int, desc: str, enabled: bool) -> Any:
    """A tqdm bar over ``total`` samples (disabled when not ``enabled``)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="sample", disable=not enabled, dynamic_ncols=True,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}]")
