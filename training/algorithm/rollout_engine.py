"""The rollout engine: one place where the metaloop generates outside the GRPO trainer, on the benchmark backends.

Difficulty estimation, diagnosis, held-out evaluation, the closed-loop episodes of both and the RL phase's episode
rows all ask :class:`RolloutEngine` (``rollout:`` in the recipe, :mod:`training.algorithm.rollout_config`):

* ``local``: :class:`benchmarks.backends.hf.HFBackend` around the live in-process policy (transformers generate);
* ``server``: :class:`~training.algorithm.rollout_replicas.ReplicaBackend` over the replicas a
  :class:`~training.algorithm.rollout_servers.ServerFleet` launches on the current checkpoint (vLLM or ``dppo
  serve``), one :class:`benchmarks.backends.openai.OpenAIBackend` per replica, requests spread round-robin and
  sent concurrently through the ``openai`` SDK;
* ``openai``: the same ``ReplicaBackend`` over an existing fleet (``rollout.base_urls``).

:meth:`RolloutEngine.use` makes the engine serve a checkpoint before a generation step (``server``: launched once
per checkpoint, kept across consecutive generation steps of that checkpoint); :meth:`RolloutEngine.stop` stops the
servers before a training phase (the next generation step relaunches them on the new checkpoint). LoRA adapters
are merged into the weights at the end of every phase, so the servers always load a full checkpoint (loading the
adapter into a running vLLM is not done).

Ranks: every rank generates its own shard of a step; the servers of a node are launched by its first process
(``LOCAL_RANK`` 0) and used by all the node's ranks (addresses exchanged with a gather), so ``N`` nodes serve with
``N`` fleets and no request crosses a node. Decisions are taken on gathered results (identical on every rank).

Faults: a rollout whose server answered with an error or garbage after the SDK's retries is a failed rollout with
its reason (``RolloutFailed``; it counts as a failure and the step goes on). A server that cannot be reached
(connection refused: it died) is restarted by its fleet's watcher (``max_restarts`` per step); the requests are sent
again once every replica answers; if it stays unreachable the step fails with a
:class:`~dppo_embodied.errors.TrainingError`, and ``--resume`` sends only the rollouts missing from the step's
journal (:mod:`training.algorithm.rollout_journal`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.backends.base import Backend
from dppo_embodied.errors import TrainingError
from dppo_embodied.generation import ChatRequest
from training.algorithm.rollout_config import RolloutSettings
from training.algorithm.rollout_journal import RolloutFailed, RolloutJournal, failure_reason
from training.algorithm.rollout_replicas import Fleet, ReplicaBackend, StaticFleet
from training.runs.distributed import gather_list, rank_world

logger = logging.getLogger(__name__)

__all__ = ["RolloutEngine", "RolloutFailed"]


def _free_memory() -> None:
    import gc

    gc.collect()
    try:
        import torch
    except ImportError:
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def node_of() -> tuple[int, bool]:
    """``(node index, first process of its node)`` from the launcher's ``RANK``/``LOCAL_RANK``/``LOCAL_WORLD_SIZE``."""
    rank, world = rank_world()
    if world == 1:
        return 0, True
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    local_rank = int(os.environ.get("LOCAL_RANK", rank % local_world))
    return rank // max(1, local_world), local_rank == 0


class RolloutEngine:
    """Where the metaloop generates (module docstring).

    Args:
        settings: ``rollout:`` of the recipe.
        run_dir: the run folder (journals under ``rollouts/``, server logs under ``rollouts/servers/``).
        dtype: the model's dtype (servers load the checkpoint with it).
        max_pixels: the processor's pixel budget per image (servers use the same).
        batch_size: the local engine's generation batch.
        max_tokens: the largest generation cap of any step (servers accept it).
        backend: a ready backend (tests): the engine then only adds journals and failure handling.
    """

    def __init__(self, settings: RolloutSettings, run_dir: Path, *, dtype: str = "float32",
                 max_pixels: int | None = None, batch_size: int = 8, max_tokens: int = 1024,
                 backend: Backend | None = None) -> None:
        self.settings, self.run_dir = settings, Path(run_dir)
        self.dtype, self.max_pixels, self.batch_size, self.max_tokens = dtype, max_pixels, batch_size, max_tokens
        self.kind = settings.engine
        self._backend: Backend | None = backend
        self._fixed = backend is not None
        self._fleet: Any = None  # the ServerFleet this process launched (first process of a node)
        self._serving = False  # server replicas of model_dir are up (launched here or by the node's first process)
        self.model_dir: str | None = None
        self._warned = False

    @classmethod
    def in_process(cls, policy: Any, run_dir: Path | None = None, batch_size: int = 8) -> RolloutEngine:
        """A ``local`` engine over a ready policy (a :class:`~inference.policy.VLMPolicy` or anything with its
        ``generate``), for scripts and tests; journals go under ``run_dir`` when one is given."""
        from benchmarks.backends.hf import HFBackend

        engine = cls(RolloutSettings(journal=run_dir is not None), Path(run_dir or "."),
                     backend=HFBackend("in-process", batch_size=batch_size, policy=policy))
        return engine

    # ------------------------------------------------------------------ lifecycle
    @property
    def backend(self) -> Backend:
        """The backend of the checkpoint in use (after :meth:`use`)."""
        if self._backend is None:
            raise TrainingError("the rollout engine serves no checkpoint yet; call use(model_dir) first")
        return self._backend

    @property
    def needs_local_model(self) -> bool:
        """Whether generation needs the model in this process (``local``)."""
        return self.kind == "local" and not self._fixed

    def use(self, model_dir: str, policy: Callable[[], Any] | None = None,
            release: Callable[[], None] | None = None) -> Backend:
        """Serve ``model_dir`` for the next generation step; returns the backend.

        Args:
            model_dir: the checkpoint.
            policy: ``local``: returns the live :class:`~inference.policy.VLMPolicy` (the model in memory).
            release: ``server`` with ``release_model``: drops the training process's model before the replicas
                launch (they share the GPUs); the engine then frees the CUDA cache.
        """
        if self._fixed:
            return self.backend
        if self.kind == "local":
            from benchmarks.backends.hf import HFBackend

            if policy is None:
                raise TrainingError("the local rollout engine needs the live policy")
            self._backend = HFBackend(model_dir, batch_size=self.batch_size, policy=policy())
            self.model_dir = model_dir
            return self._backend
        if self.kind == "openai":
            if not self._warned:
                logger.warning("rollout.engine openai: %s serve(s) %r; the metaloop does not sync weights -- keep "
                               "the fleet on the current checkpoint yourself (%s now)",
                               ", ".join(self.settings.base_urls), self.settings.model, model_dir)
                self._warned = True
            if self._backend is None:
                key = os.environ.get(self.settings.api_key_env) or None
                fleet = StaticFleet(self.settings.base_urls, key, wait_s=60.0, hint=" (rollout.base_urls)")
                self._backend = self._replicas(fleet, self.settings.model, key)
            self.model_dir = model_dir
            return self._backend
        if self._serving and self.model_dir == model_dir:
            if self._fleet is not None:
                self._fleet.new_step()
            return self.backend
        self.stop()
        if release is not None and self.settings.server.release_model:
            release()
            _free_memory()
        self._launch(model_dir)
        return self.backend

    def _replicas(self, fleet: Fleet, model: str, key: str | None) -> ReplicaBackend:
        s = self.settings
        return ReplicaBackend(fleet, model, api_key=key, concurrency=s.concurrency, timeout_s=s.timeout_s,
                              max_retries=s.max_retries, image_format=s.image_format)

    def _launch(self, model_dir: str) -> None:
        from training.algorithm.rollout_servers import SERVED_NAME, ServerFleet

        node, first = node_of()
        fleet, payload = None, {"node": node, "urls": None, "key": None, "error": None}
        if first:
            fleet = ServerFleet(self.settings.server, model_dir, self.run_dir / "rollouts" / "servers" / f"node{node}",
                                dtype=self.settings.server.dtype or self.dtype, max_pixels=self.max_pixels,
                                max_tokens=self.max_tokens, timeout_s=self.settings.timeout_s)
            try:
                fleet.start()
                fleet.watch()
                payload.update(urls=fleet.urls, key=fleet.api_key)
            except TrainingError as e:
                payload["error"] = str(e)
        shared = gather_list([payload])
        errors = [p["error"] for p in shared if p["error"]]
        if errors:
            if fleet is not None:
                fleet.stop()
            raise TrainingError(errors[0])
        mine = next(p for p in shared if p["node"] == node and p["urls"])
        view: Fleet = fleet if fleet is not None else StaticFleet(
            mine["urls"], mine["key"], wait_s=self.settings.server.startup_timeout_s,
            hint=f" (logs: {self.run_dir / 'rollouts' / 'servers'})")
        self._fleet, self._serving = fleet, True
        self._backend = self._replicas(view, SERVED_NAME, mine["key"])
        self.model_dir = model_dir

    def stop(self) -> None:
        """Stop the servers this process launched and forget the backend (idempotent; ``openai`` keeps its
        fleet)."""
        if self._fixed or self.kind == "openai":
            return
        if self._backend is not None:
            self._backend.close()
        self._backend = None
        if self._fleet is not None:
            self._fleet.stop()
        self._fleet, self._serving = None, False
        self.model_dir = None

    # ------------------------------------------------------------------ generation
    def journal(self, step: str, **meta: Any) -> RolloutJournal | None:
        """The journal of ``step`` (``None`` when ``rollout.journal`` is off)."""
        if not self.settings.journal:
            return None
        rank = rank_world()[0]
        return RolloutJournal(self.run_dir / "rollouts" / step.replace("/", "-"), rank, meta)

    def generate(self, requests: Sequence[ChatRequest], keys: Sequence[str] | None = None,
                 journal: RolloutJournal | None = None) -> list[str | Exception]:
        """One completion per request: the text, or the error of a rollout that failed for good.

        Args:
            requests: the requests (``settings.n`` is ignored: repeat a request for several rollouts).
            keys: one journal key per request (required with ``journal``).
            journal: the step's journal: keys found there are not sent; new results are recorded.

        Raises:
            TrainingError: the servers cannot be reached (the finished rollouts are journaled first).
        """
        out: list[str | Exception | None] = [None] * len(requests)
        todo = list(range(len(requests)))
        if journal is not None:
            if keys is None or len(keys) != len(requests):
                raise ValueError("generate() with a journal needs one key per request")
            todo = [i for i in todo if keys[i] not in journal]
            for i in range(len(requests)):
                if keys[i] in journal:
                    out[i] = journal.get(keys[i])
        if todo:
            backend = self.backend
            batch = [requests[i] for i in todo]

            def done(k: int, res: str | Exception) -> None:
                i = todo[k]
                out[i] = res if isinstance(res, str) else RolloutFailed(failure_reason(res))
                if journal is not None and keys is not None:
                    journal.record(keys[i], out[i])  # type: ignore[arg-type]

            try:
                backend.generate(batch, done)
            finally:
                if journal is not None:
                    journal.sync()
        missing = [i for i, o in enumerate(out) if o is None]
        if missing:
            raise TrainingError(f"the rollout backend returned no result for {len(missing)} request(s)")
        return out  # type: ignore[return-value]

