"""Crash-safe run state: atomic JSON files, atomic checkpoints, and a journal of completed steps.

The metaloop is a sequence of named steps (``prepare``, ``eval_base``, ``k1/difficulty``, ``k1/rl``, ...). After a
step finishes, its artifacts are written (each atomically with :mod:`dppo_embodied.io`: temporary file + ``fsync``
+ ``os.replace``), a model checkpoint is committed if the step trained (saved to ``<name>.tmp-<pid>`` then renamed),
and only then the step is appended to ``state.json`` (again atomically) and to ``journal.jsonl``. A ``kill -9`` at
any moment therefore leaves either the previous state or the new one, never a half-written file: ``--resume``
re-runs at most the step that was interrupted, from the last committed checkpoint, and never repeats a finished one.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dppo_embodied.errors import DataError, TrainingError
from dppo_embodied.io import append_jsonl, atomic_write_json, fsync_dir, read_json

__all__ = ["RunState", "StateStore", "clean_partial", "commit_checkpoint"]

logger = logging.getLogger(__name__)

STATE_VERSION = 1


def commit_checkpoint(save: Callable[[Path], None], final: str | os.PathLike[str]) -> Path:
    """Save a checkpoint atomically: ``save(tmp_dir)`` then rename ``tmp_dir`` to ``final``.

    An existing ``final`` (left by a run killed between the rename and the state update) is replaced.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f"{final.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    save(tmp)
    for f in tmp.rglob("*"):
        if f.is_file():
            with f.open("rb") as fh:
                os.fsync(fh.fileno())
    if final.exists():
        trash = final.with_name(f"{final.name}.old-{os.getpid()}")
        os.replace(final, trash)
        os.replace(tmp, final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, final)
    fsync_dir(final.parent)
    return final


def clean_partial(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove leftovers of interrupted writes (``*.tmp-<pid>``, ``*.old-<pid>``) under ``folder``."""
    removed = []
    root = Path(folder)
    if not root.exists():
        return removed
    for p in list(root.rglob("*")):
        if ".tmp-" in p.name or ".old-" in p.name:
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            elif p.exists():
                p.unlink()
            removed.append(p)
    return removed


@dataclass
class RunState:
    """What ``state.json`` holds.

    Attributes:
        run: run name.
        completed: names of completed steps, in order.
        model_path: the checkpoint the next step starts from.
        loop: current loop k (0 before the first loop).
        phase: name of the last completed step.
        compute_s: training compute spent so far (CPU seconds).
        teacher_calls: teacher (and expert-demonstration) calls spent so far
            (:mod:`training.algorithm.teacher_budget`).
        values: small per-step results (SR table paths, stop decisions, eval scores...).
        version: state format version.
        sessions: one entry per start or resume of the run: ``{"started": ISO time, "command": command line}``.
    """

    run: str
    completed: list[str] = field(default_factory=list)
    model_path: str = ""
    loop: int = 0
    phase: str = ""
    compute_s: float = 0.0
    teacher_calls: int = 0
    values: dict[str, Any] = field(default_factory=dict)
    version: int = STATE_VERSION
    sessions: list[dict[str, Any]] = field(default_factory=list)

    def done(self, step: str) -> bool:
        """True when ``step`` completed."""
        return step in self.completed


class StateStore:
    """Reads and commits :class:`RunState` in a run folder.

    Args:
        folder: the run's output folder.
        run: the run name (checked on resume).
        is_main: only the main process writes (multi-process runs).
    """

    def __init__(self, folder: str | os.PathLike[str], run: str, is_main: bool = True) -> None:
        self.folder, self.run, self.is_main = Path(folder), run, is_main
        self.path = self.folder / "state.json"
        self.journal = self.folder / "journal.jsonl"

    def exists(self) -> bool:
        """True when a state file exists."""
        return self.path.is_file()

    def load(self) -> RunState:
        """Load the state (a fresh one when the folder has none)."""
        try:
            data = read_json(self.path, default=None)
        except DataError as e:
            raise TrainingError(f"{e}; delete it or start a fresh run without --resume") from e
        if data is None:
            return RunState(run=self.run)
        if data.get("version") != STATE_VERSION:
            raise TrainingError(f"{self.path}: state version {data.get('version')} is not {STATE_VERSION}; "
                                "start a fresh run (different --output-dir)")
        if data.get("run") != self.run:
            raise TrainingError(f"{self.path} belongs to run {data.get('run')!r}, not {self.run!r}; "
                                "use a different --output-dir or the matching recipe")
        return RunState(**data)

    def commit(self, state: RunState, step: str, **values: Any) -> None:
        """Mark ``step`` completed (with optional small values) and persist atomically.

        Raises:
            TrainingError: if ``step`` already completed (a resumed run never redoes finished work).
        """
        if state.done(step):
            raise TrainingError(f"step {step!r} already completed; the run state is inconsistent")
        state.completed.append(step)
        state.phase = step
        if values:
            state.values[step] = values
        if not self.is_main:
            return
        atomic_write_json(self.path, state.__dict__)
        append_jsonl(self.journal, [{"step": step, "time": time.time(), "pid": os.getpid()}])
        logger.info("step %s done", step)

    def save(self, state: RunState) -> None:
        """Persist the state without completing a step (e.g. the model path after a checkpoint)."""
        if self.is_main:
            atomic_write_json(self.path, state.__dict__)
