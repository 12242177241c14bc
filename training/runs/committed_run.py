"""A run made of named steps that commit atomically: the run machinery under :class:`training.metaloop.Metaloop`.

A step runs unless ``state.json`` lists it as completed; when it returns, every rank waits, rank 0 records it
(:class:`~training.runs.state.StateStore`, one atomic write with the checkpoint the state now points at), and only
then are the checkpoints the state no longer points at deleted. A ``kill -9`` at any moment leaves the previous
state or the new one, and ``--resume`` restarts at the first unfinished step.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dppo_embodied.errors import TrainingError
from dppo_embodied.io import atomic_write_json
from dppo_embodied.provenance import command_line, iso
from training.runs.distributed import barrier, broadcast, is_main, rank_world
from training.runs.state import StateStore, clean_partial, commit_checkpoint

logger = logging.getLogger(__name__)


class CommittedRun:
    """Steps, checkpoints, per-rank audit files and the compute budget of a run in ``out``.

    Args:
        out: the run folder.
        name: the run name (checked on resume).
        resume: continue from ``<out>/state.json`` (else the folder must not hold a run).
        budget_s: training compute budget in seconds (0 = none).
        on_step: optional hook called after each committed step with its name (tests use it).

    Attributes:
        checkpoint_extras: optional ``write(folder)`` adding files beside the weights of every checkpoint, inside
            its atomic commit (the metaloop records the step prompt style there).
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
        self.started = time.time()
        self.state.sessions.append({"started": iso(self.started), "command": command_line()})  # saved with a step
        self.model: Any = None
        self.processor: Any = None
        self._stale: list[str] = []
        self.checkpoint_extras: Callable[[Path], None] | None = None

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
                if self.checkpoint_extras is not None:
                    self.checkpoint_extras(tmp)

            commit_checkpoint(save, final)
        barrier()
        # the in-memory model now equals this checkpoint: name it, for whatever rebuilds the model from its config
        # (TRL's KL reference with grpo.beta > 0); it otherwise names the folder it was first loaded from
        self.model.config._name_or_path = str(final)
        old = self.model_dir if self.state.model_path else ""
        self.state.model_path = self.inside(final)
        if old and Path(old).parent == final.parent and Path(old) != final:
            self._stale.append(old)

    def inside(self, path: Path) -> str:
        """``path`` relative to the run folder when it lies inside it (a copied run loads its own files), else as
        given."""
        try:
            return Path(path).resolve().relative_to(self.out.resolve()).as_posix()
        except ValueError:
            return str(path)

    @property
    def model_dir(self) -> str:
        """The checkpoint the next step starts from: ``state.model_path`` resolved against the run folder when it is
        one of the run's own (``ckpt/k1-rl``, ``base_model``), else as recorded (a base checkpoint or hub id)."""
        p = Path(self.state.model_path)
        if not p.is_absolute() and (self.out / p).exists():
            return str(self.out / p)
        return self.state.model_path

    def _rank_dump(self, name: str, data: dict[str, Any]) -> None:
        """Multi-process runs: every rank writes its own view of a decision (audit: ranks must agree)."""
        rank, world = rank_world()
        if world > 1:
            atomic_write_json(self.out / "ranks" / f"{name}-rank{rank}.json", data)
