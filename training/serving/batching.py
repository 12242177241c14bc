"""Micro-batching in front of a local VLM: concurrent requests that arrive within a few milliseconds are generated
as one batch.

One worker thread owns the model (generation is not run concurrently). It waits for a request, then keeps
collecting for ``window_s`` (or until ``max_batch_size``), groups the requests by generation settings
(:meth:`GenParams.key`) and runs each group through :meth:`Backend.generate`. While a batch runs, new requests
queue up and form the next batch, so under load batches fill up by themselves.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

from training.serving.protocol import Completion, ConversationRequest, GenParams, RequestError, apply_stop

logger = logging.getLogger(__name__)


class Backend(Protocol):
    """What the batcher needs from a model."""

    def generate(self, requests: Sequence[ConversationRequest], params: GenParams) -> list[list[Completion]]:
        """``params.n`` completions per request, in request order."""
        ...

    def prompt_tokens(self, request: ConversationRequest) -> int:
        """Number of prompt tokens of a request (for ``usage``)."""
        ...


class PolicyBackend:
    """:class:`Backend` over :class:`training.policy.VLMPolicy` (any of our checkpoints, tiny or real).

    Args:
        policy: a loaded :class:`~training.policy.VLMPolicy`.
    """

    def __init__(self, policy: Any) -> None:
        self.policy = policy
        self.tokenizer = policy.processor.tokenizer

    def _count(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False)) if text else 0

    def prompt_tokens(self, request: ConversationRequest) -> int:
        """Prompt tokens of the rendered chat template (each image counts as its placeholder tokens only)."""
        try:
            text = self.policy.processor.apply_chat_template(request.messages(), add_generation_prompt=True,
                                                             tokenize=False)
        except Exception as e:  # usage is informative; never fail a request over it
            logger.debug("prompt token count failed: %s", e)
            return 0
        return self._count(text)

    def generate(self, requests: Sequence[ConversationRequest], params: GenParams) -> list[list[Completion]]:
        """Generate with :meth:`VLMPolicy.generate` and apply OpenAI stop/finish semantics."""
        raw = self.policy.generate(list(requests), max_new_tokens=params.max_tokens, temperature=params.temperature,
                                   num_return_sequences=params.n, top_p=params.top_p,
                                   stop=list(params.stop) or None)
        out: list[list[Completion]] = []
        for r in raw:
            texts = [r] if isinstance(r, str) else list(r)
            choices = []
            for t in texts:
                text, stopped = apply_stop(t, params.stop)
                n_tok = self._count(t)
                finish = "stop" if stopped or n_tok < params.max_tokens else "length"
                choices.append(Completion(text=text, finish_reason=finish,
                                              completion_tokens=min(self._count(text), params.max_tokens)))
            out.append(choices)
        return out


@dataclass
class _Job:
    request: ConversationRequest
    params: GenParams
    future: Future[tuple[list[Completion], int]] = field(default_factory=Future)
    t_submit: float = field(default_factory=time.perf_counter)


@dataclass
class BatchStats:
    """Counters of the batcher (read them for monitoring; updated by the worker thread)."""

    requests: int = 0
    batches: int = 0
    generate_calls: int = 0
    max_batch: int = 0
    busy_s: float = 0.0

    @property
    def mean_batch(self) -> float:
        """Mean requests per collected batch."""
        return self.requests / self.batches if self.batches else 0.0


class MicroBatcher:
    """Collects concurrent requests into batches for one model-owning worker thread.

    Args:
        backend: the model.
        max_batch_size: most requests per batch.
        window_s: how long to keep collecting after the first request of a batch (seconds).
        max_queue: requests waiting at most; beyond that :meth:`submit` raises a 503 :class:`RequestError`.
    """

    def __init__(self, backend: Backend, max_batch_size: int = 8, window_s: float = 0.005,
                 max_queue: int = 256) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        if window_s < 0:
            raise ValueError(f"window_s must be >= 0 seconds, got {window_s}")
        self.backend = backend
        self.max_batch_size, self.window_s = max_batch_size, window_s
        self._q: queue.Queue[_Job | None] = queue.Queue(maxsize=max_queue)
        self._stop = threading.Event()
        self.stats = BatchStats()
        self._thread = threading.Thread(target=self._run, name="dppo-serve-batcher", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        """Whether the worker thread is running."""
        return self._thread.is_alive() and not self._stop.is_set()

    def submit(self, request: ConversationRequest, params: GenParams) -> Future[tuple[list[Completion], int]]:
        """Queue a request; the future resolves to ``(choices, prompt_tokens)``.

        Raises:
            RequestError: 503 when the queue is full or the batcher is closed.
        """
        if self._stop.is_set():
            raise RequestError("the server is shutting down", status=503, type_="server_error")
        job = _Job(request, params)
        try:
            self._q.put_nowait(job)
        except queue.Full:
            raise RequestError("the server is overloaded (request queue full); retry with backoff or lower the "
                               "client concurrency", status=503, type_="server_error") from None
        return job.future

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the worker; queued requests fail with a 503 error. Idempotent."""
        if self._stop.is_set():
            return
        self._stop.set()
        with contextlib.suppress(queue.Full):
            self._q.put_nowait(None)
        self._thread.join(timeout_s)
        while True:
            try:
                job = self._q.get_nowait()
            except queue.Empty:
                break
            if job is not None and not job.future.done():
                job.future.set_exception(RequestError("the server is shutting down", status=503,
                                                      type_="server_error"))

    def _collect(self, first: _Job) -> list[_Job]:
        batch = [first]
        t_end = time.perf_counter() + self.window_s
        while len(batch) < self.max_batch_size:
            remaining = t_end - time.perf_counter()
            try:
                job = self._q.get(timeout=remaining) if remaining > 0 else self._q.get_nowait()
            except queue.Empty:
                break
            if job is None:  # close() sentinel: finish this batch, then stop
                self._stop.set()
                break
            batch.append(job)
        return batch

    def _run(self) -> None:
        while not self._stop.is_set():
            first = self._q.get()
            if first is None:
                break
            batch = self._collect(first)
            self.stats.requests += len(batch)
            self.stats.batches += 1
            self.stats.max_batch = max(self.stats.max_batch, len(batch))
            groups: dict[tuple[Any, ...], list[_Job]] = {}
            for job in batch:
                groups.setdefault(job.params.key(), []).append(job)
            t0 = time.perf_counter()
            for jobs in groups.values():
                live = [j for j in jobs if j.future.set_running_or_notify_cancel()]
                if not live:
                    continue
                self._generate(live)
            self.stats.busy_s += time.perf_counter() - t0

    def _generate(self, jobs: list[_Job]) -> None:
        """Run one group; if the batch fails, retry its requests one by one so one bad request fails alone."""
        self.stats.generate_calls += 1
        try:
            results = self.backend.generate([j.request for j in jobs], jobs[0].params)
            for j, choices in zip(jobs, results, strict=True):
                j.future.set_result((choices, self.backend.prompt_tokens(j.request)))
        except Exception as e:  # one bad batch must not kill the worker
            if len(jobs) > 1:
                logger.warning("a batch of %d failed (%s: %s); retrying one by one", len(jobs), type(e).__name__, e)
                for j in jobs:
                    if not j.future.done():
                        self._generate([j])
                return
            logger.exception("generation failed")
            if not jobs[0].future.done():
                jobs[0].future.set_exception(e)
