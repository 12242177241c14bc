"""Settings of one ``dppo eval run`` and where its data and processes are (shared by every kind of task)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.task import TaskSpec
from dppo_embodied.errors import ConfigError


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

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"--limit must be >= 1, got {self.limit}")
        if self.frames < 1:
            raise ConfigError(f"--frames must be >= 1, got {self.frames}")


def dist_info() -> tuple[int, int]:
    """``(rank, world_size)`` from the environment ``accelerate launch``/``torchrun`` set (``(0, 1)`` otherwise)."""
    try:
        return int(os.environ.get("RANK", "0")), max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError as e:
        raise ConfigError(f"RANK/WORLD_SIZE must be integers: {e}") from e


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
