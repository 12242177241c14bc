"""Micro-batching and fair scheduling in front of a local VLM.

One worker thread owns the model (generation is never run concurrently: Qwen2.5-VL keeps per-generation state on
the model). Requests wait in a queue; the worker takes the next batch when the previous one is done:

* **Deadlines.** Every request carries a deadline (arrival + its time budget). A request still queued at its
  deadline fails with 504 (nothing was generated); a request being generated at its deadline is cut by a
  stopping criterion (:mod:`inference.serving.deadlines`), its choices ending with ``finish_reason: "length"``.
* **Fair order.** The next batch starts with the queued request of the earliest *estimated finish time*: arrival
  + ``n * max_tokens`` x the measured seconds per generated token (a moving average). A 4-token request that
  arrives while a 4096-token request waits goes first; the big request is never starved, because its estimate is
  fixed while newcomers' estimates keep moving later. A batch already running is not preempted (``transformers``
  generation cannot be paused and resumed cheaply); the work cap per request (``n * max_tokens``) and the
  deadline bound how long it holds the worker.
* **Batching.** The batch is filled with queued requests of identical generation settings
  (:meth:`~dppo_embodied.generation.GenerationSettings.key`) whose deadlines are within ``deadline_slack_s`` of
  the first one's (a batch returns when its last row ends, so a request is answered at most that long after its
  deadline), in the same order, up
  to ``max_batch_size``. When the worker is idle it waits ``window_s`` after the oldest queued request arrived,
  so near-simultaneous requests share a batch.
* **Admission.** Beyond ``max_queue`` waiting requests, or ``max_queued_pixels`` of decoded images held by them,
  :meth:`MicroBatcher.submit` answers 503 at once.

:meth:`MicroBatcher.health` reports the queue depth, the oldest wait and how long the running batch has run.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from dppo_embodied.generation import ChatRequest, GenerationSettings
from inference.serving.backend import Backend
from inference.serving.protocol import Completion, RequestError

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class _Job:
    request: ChatRequest
    params: GenerationSettings
    prompt_tokens: int
    deadline: float
    pixels: int
    t_submit: float
    finish_estimate: float
    future: Future[tuple[list[Completion], int]] = field(default_factory=Future)


@dataclass
class BatchStats:
    """Counters of the batcher (read them for monitoring; updated by the worker thread)."""

    requests: int = 0
    batches: int = 0
    generate_calls: int = 0
    max_batch: int = 0
    busy_s: float = 0.0
    expired_in_queue: int = 0
    cut_by_deadline: int = 0

    @property
    def mean_batch(self) -> float:
        """Mean requests per collected batch."""
        return self.requests / self.batches if self.batches else 0.0


def _close(a: float, b: float, slack: float) -> bool:
    return a == b or abs(a - b) <= slack


def _shutting_down() -> RequestError:
    return RequestError("the server is shutting down", status=503, type_="server_error")


class MicroBatcher:
    """Schedules queued requests into batches for one model-owning worker thread.

    Args:
        backend: the model.
        max_batch_size: most requests per batch.
        window_s: how long an idle worker waits after the oldest queued request arrived, for more to batch with it.
        max_queue: requests waiting at most; beyond that :meth:`submit` raises a 503 :class:`RequestError`.
        max_queued_pixels: decoded image pixels the waiting requests may hold together (``None``: no bound).
        saturation_wait_s: :meth:`health` reports ``saturated`` once the oldest request has waited this long.
        deadline_slack_s: requests batched together have deadlines at most this far apart.
    """

    def __init__(self, backend: Backend, max_batch_size: int = 8, window_s: float = 0.005, max_queue: int = 256,
                 max_queued_pixels: int | None = None, saturation_wait_s: float = 5.0,
                 deadline_slack_s: float = 1.0) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        if window_s < 0:
            raise ValueError(f"window_s must be >= 0 seconds, got {window_s}")
        self.backend = backend
        self.max_batch_size, self.window_s, self.max_queue = max_batch_size, window_s, max_queue
        self.max_queued_pixels, self.saturation_wait_s = max_queued_pixels, saturation_wait_s
        self.deadline_slack_s = deadline_slack_s
        self.stats = BatchStats()
        self.s_per_token = 0.01  # moving average of generation seconds per token (fair-order estimates)
        self._cv = threading.Condition()
        self._pending: list[_Job] = []
        self._queued_pixels = 0
        self._running: list[_Job] = []
        self._running_since: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dppo-serve-batcher", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        """Whether the worker thread is running."""
        return self._thread.is_alive() and not self._stop.is_set()

    def submit(self, request: ChatRequest, prompt_tokens: int = 0, timeout_s: float | None = None,
               pixels: int = 0) -> Future[tuple[list[Completion], int]]:
        """Queue a request; the future resolves to ``(choices, prompt_tokens)``.

        Args:
            request: the conversation and its generation settings.
            prompt_tokens: its prompt length (reported in ``usage``).
            timeout_s: its time budget from now (``None``: no deadline).
            pixels: decoded image pixels it holds while queued.

        Raises:
            RequestError: 503 when the queue (or its image budget) is full or the batcher is closed.
        """
        now = time.monotonic()
        with self._cv:
            if self._stop.is_set():
                raise _shutting_down()
            if len(self._pending) >= self.max_queue:
                raise RequestError(f"the server is overloaded ({len(self._pending)} requests waiting); retry with "
                                   "backoff or lower the client concurrency", status=503, type_="server_error")
            if self.max_queued_pixels is not None and self._queued_pixels + pixels > self.max_queued_pixels:
                raise RequestError(f"the server is overloaded (waiting requests hold {self._queued_pixels:,} image "
                                   f"pixels of {self.max_queued_pixels:,}); retry with backoff or send smaller "
                                   "images", status=503, type_="server_error")
            deadline = now + timeout_s if timeout_s is not None else math.inf
            params = request.settings
            job = _Job(request, params, prompt_tokens, deadline, pixels, now,
                       finish_estimate=now + params.n * params.max_tokens * self.s_per_token)
            self._pending.append(job)
            self._queued_pixels += pixels
            self._cv.notify_all()
        job.future.add_done_callback(lambda f: self._forget(job) if f.cancelled() else None)
        return job.future

    def _forget(self, job: _Job) -> None:
        """Take a cancelled request out of the queue (its client gave up or its deadline passed)."""
        with self._cv:
            if job in self._pending:
                self._pending.remove(job)
                self._queued_pixels -= job.pixels

    def health(self) -> dict[str, Any]:
        """Saturation figures: ``status`` (``ok``, ``saturated`` or ``down``), ``queue_depth``, ``oldest_wait_s``,
        ``running`` (requests in the batch being generated), ``running_for_s``."""
        now = time.monotonic()
        with self._cv:
            oldest = max((now - j.t_submit for j in self._pending), default=0.0)
            depth, running = len(self._pending), len(self._running)
            running_for = now - self._running_since if self._running_since is not None else 0.0
        if not self.alive:
            status = "down"
        elif depth >= self.max_queue or oldest >= self.saturation_wait_s:
            status = "saturated"
        else:
            status = "ok"
        return {"status": status, "queue_depth": depth, "oldest_wait_s": round(oldest, 3), "running": running,
                "running_for_s": round(running_for, 3), "max_queue": self.max_queue}

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the worker; queued requests fail with a 503 error. Idempotent."""
        with self._cv:
            if self._stop.is_set():
                return
            self._stop.set()
            pending, self._pending, self._queued_pixels = self._pending, [], 0
            self._cv.notify_all()
        for job in pending:
            if not job.future.done():
                job.future.set_exception(_shutting_down())
        self._thread.join(timeout_s)

    def _expire(self, now: float) -> None:
        """Drop cancelled requests and fail those whose deadline passed in the queue (504). Holds the lock."""
        keep = []
        for j in self._pending:
            if j.future.cancelled():
                self._queued_pixels -= j.pixels
            elif now >= j.deadline:
                self._queued_pixels -= j.pixels
                self.stats.expired_in_queue += 1
                j.future.set_exception(RequestError(
                    f"the request's deadline passed after {now - j.t_submit:.1f} s in the queue, before generation "
                    f"started: the server is saturated ({len(self._pending)} requests waiting, see GET /health). "
                    "Retry later, lower the load, or send a larger timeout_s", status=504, type_="timeout_error"))
            else:
                keep.append(j)
        self._pending = keep

    def _next_batch(self) -> list[_Job] | None:
        """Wait for work and take the next batch (``None`` once closed)."""
        with self._cv:
            while not self._pending and not self._stop.is_set():
                self._cv.wait()
            t_first = min((j.t_submit for j in self._pending), default=0.0)
            while len(self._pending) < self.max_batch_size and not self._stop.is_set():
                remaining = t_first + self.window_s - time.monotonic()
                if remaining <= 0:
                    break
                self._cv.wait(remaining)
            if self._stop.is_set():
                return None
            now = time.monotonic()
            self._expire(now)
            order = sorted(self._pending, key=lambda j: (j.finish_estimate, j.t_submit))
            if not order:
                return []
            head = order[0]
            batch = [j for j in order if j.params.key() == head.params.key()
                     and _close(j.deadline, head.deadline, self.deadline_slack_s)][: self.max_batch_size]
            chosen = {id(j) for j in batch}
            self._pending = [j for j in self._pending if id(j) not in chosen]
            self._queued_pixels -= sum(j.pixels for j in batch)
            batch = [j for j in batch if j.future.set_running_or_notify_cancel()]
            self._running, self._running_since = batch, now
            return batch

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            if not batch:
                continue
            self.stats.requests += len(batch)
            self.stats.batches += 1
            self.stats.max_batch = max(self.stats.max_batch, len(batch))
            t0 = time.monotonic()
            tokens = self._generate(batch)
            elapsed = time.monotonic() - t0
            self.stats.busy_s += elapsed
            if tokens > 0:
                self.s_per_token = 0.8 * self.s_per_token + 0.2 * elapsed / tokens
            with self._cv:
                self._running, self._running_since = [], None

    def _generate(self, jobs: Sequence[_Job]) -> int:
        """Run one batch; if it fails, retry its requests one by one so one bad request fails alone.

        Returns:
            The most tokens generated for one choice (the batch's number of decoding steps).
        """
        self.stats.generate_calls += 1
        try:
            results = self.backend.generate([j.request for j in jobs], jobs[0].params, [j.deadline for j in jobs])
            steps = 0
            for j, choices in zip(jobs, results, strict=True):
                self.stats.cut_by_deadline += any(c.deadline_hit for c in choices)
                steps = max([steps, *(c.completion_tokens for c in choices)])
                j.future.set_result((choices, j.prompt_tokens))
            return steps
        except Exception as e:  # one bad batch must not kill the worker
            if len(jobs) > 1:
                logger.warning("a batch of %d failed (%s: %s); retrying one by one", len(jobs), type(e).__name__, e)
                return max([self._generate([j]) for j in jobs if not j.future.done()], default=0)
            logger.exception("generation failed")
            if not jobs[0].future.done():
                jobs[0].future.set_exception(e)
            return 0
