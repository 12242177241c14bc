"""A run made of named steps that commit atomically: the run machinery under :class:`training.metaloop.Metaloop`.

A step runs unless ``state.json`` lists it as completed; when it returns, every rank waits, rank 0 records it
(:class:`~training.runs.state.StateStore`, one atomic write with the checkpoint the state now points at), and only
then are the checkpoints the state no longer points at deleted. A ``kill -9`` at any moment leaves the previous
state or the new one, and ``--resume`` restarts at the first unfinished step.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dppo_embodied.errors import TrainingError
from training.runs.distributed import barrier, broadcast, is_main, rank_world
from training.runs.state import StateStore, atomic_write_json, clean_partial, commit_checkpoint

logger = logging.getLogger(__name__)


class CommittedRun:
    """Steps, checkpoints, per-rank audit files and the compute budget of a run in ``out``.

    Args:
        out: the run folder.
        name: the run name (checked on resume).
        resume: continue from ``<out>/state.json`` (else the folder must not hold a run).
        budget_s: training compute budget in seconds (0 = none).
        on_step: optional hook called after each committed step with its name (tests use it).
    """

    def __init__(self, out: Path, name: str, resume: bool = False, budget_s: float = 0.0,
                 on_step: Callable[[str], None] | None = None) -> None:
        self.out, self.budget_s, self.on_step = Path(out), budget_s, on_step
        self.store = StateStore(self.out, name, is_main=is_main())
        if self.store.exists() and not resume:
            raise TrainingError(f"{self.out} already holds a run; pass --resume to continue it or choose another "
                                "--output-dir")
        barrier()  # every rank has checked for an existing run before rank 0 may start writing one
        if is_main():
            clean_partial(self.out)
        barrier()
        self.state = self.store.load()
        self.model: Any = None
        self.processor: Any = None
        self._stale: list[str] = []

    def _step(self, name: str, fn: Callable[[], dict[str, Any] | None]) -> None:
        """Run ``fn`` unless ``name`` already completed; then commit it (rank 0 writes, all ranks wait)."""
        if self.state.done(name):
            return
        logger.info("== %s ==", name)
        values = fn() or {}
        barrier()
        self.state.compute_s = broadcast(self.state.compute_s)  # budget decisions must agree across ranks
        self.store.commit(self.state, name, **values)
        barrier()
        if is_main():  # checkpoints the committed state no longer points at
            for old in self._stale:
                shutil.rmtree(old, ignore_errors=True)
        self._stale = []
        if self.on_step:
            self.on_step(name)

    def _budget_left(self) -> float:
        b = self.budget_s
        return float("inf") if b <= 0 else b - self.state.compute_s

    def _checkpoint(self, name: str) -> None:
        """Save the in-memory model as ``ckpt/<name>`` (atomically) for the step being run.

        The state points at it only when the step commits (both in one atomic write), and the previous checkpoint
        is deleted only after that: a kill in between leaves the state on the previous, intact checkpoint.
        """
        final = self.out / "ckpt" / name
        if is_main():
            def save(tmp: Path) -> None:
                self.model.save_pretrained(tmp)
                self.processor.save_pretrained(tmp)

            commit_checkpoint(save, final)
        barrier()
        old = self.state.model_path
        self.state.model_path = str(final)
        if old and Path(old).parent == final.parent and Path(old) != final:
            self._stale.append(old)

    def _rank_dump(self, name: str, data: dict[str, Any]) -> None:
        """Multi-process runs: every rank writes its own view of a decision (audit: ranks must agree)."""
        rank, world = rank_world()
        if world > 1:
            atomic_write_json(self.out / "ranks" / f"{name}-rank{rank}.json", data)
