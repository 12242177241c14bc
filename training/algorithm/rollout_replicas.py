"""Requests spread over several OpenAI-compatible servers: :class:`ReplicaBackend`, the rollout engine's backend for
``server`` replicas and ``openai`` fleets (:mod:`training.algorithm.rollout_engine`).

Each server gets its own :class:`benchmarks.backends.openai.OpenAIBackend` (the ``openai`` SDK: retries, backoff,
connection pool); requests are spread round-robin and sent concurrently. A request that never reached its server
(connection refused: the server died) is not a result: it is sent again once the fleet is healthy
(:meth:`Fleet.wait_healthy`: a launched fleet's watcher restarts dead replicas), and if it still cannot reach one,
:class:`~dppo_embodied.errors.TrainingError` stops the step. A request the server answered badly (5xx or garbage
after the retries) or too slowly is a failed result, reported as such.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import openai

from benchmarks.backends.base import Backend, ResultCallback
from benchmarks.backends.openai import OpenAIBackend
from dppo_embodied.client import ChatClient, ClientConfig
from dppo_embodied.errors import ClientError, TrainingError
from dppo_embodied.generation import ChatRequest
from dppo_embodied.images import to_data_url

logger = logging.getLogger(__name__)

__all__ = ["Fleet", "ReplicaBackend", "StaticFleet", "is_unreachable"]


def is_unreachable(result: Any) -> bool:
    """A request that never reached a server (connection refused or reset), as opposed to one it answered badly
    or too slowly (a timeout is a failed rollout: the server was up)."""
    cause = getattr(result, "__cause__", None)
    return (isinstance(result, ClientError) and isinstance(cause, openai.APIConnectionError)
            and not isinstance(cause, openai.APITimeoutError))


class Fleet(Protocol):
    """Where :class:`ReplicaBackend` sends: the servers' API roots and a way to wait for them."""

    urls: list[str]

    def wait_healthy(self) -> None:
        """Return once every server answers; raise :class:`TrainingError` naming them otherwise."""
        ...


class StaticFleet:
    """Servers that someone else runs (``engine: openai``, or a node's replicas seen from its other ranks).

    Args:
        urls: API roots.
        api_key: bearer token.
        wait_s: how long :meth:`wait_healthy` waits for them.
        hint: what to check when they stay down (named in the error).
    """

    def __init__(self, urls: Sequence[str], api_key: str | None, wait_s: float = 60.0, hint: str = "") -> None:
        self.urls, self.api_key, self.wait_s, self.hint = list(urls), api_key, wait_s, hint

    def wait_healthy(self) -> None:
        """Poll every server's health until all answer or ``wait_s`` passes."""
        clients = [ChatClient(ClientConfig(base_url=u, model="-", api_key=self.api_key, max_retries=0))
                   for u in self.urls]
        deadline = time.monotonic() + self.wait_s
        try:
            while True:
                down = [c.config.base_url for c in clients if not c.health(timeout_s=2.0)]
                if not down:
                    return
                if time.monotonic() > deadline:
                    raise TrainingError(f"rollout server(s) {', '.join(down)} cannot be reached "
                                        f"({self.wait_s:.0f} s){self.hint}; the step is resumable: fix them and run "
                                        "the same command with --resume (finished rollouts are not sent again)")
                time.sleep(1.0)
        finally:
            for c in clients:
                c.close()


class ReplicaBackend(Backend):
    """A :class:`~benchmarks.backends.base.Backend` over several OpenAI-compatible servers.

    Requests are spread round-robin (a counter shared by every caller) and sent concurrently, ``concurrency`` per
    server; ``on_result`` is called in the calling thread. Requests that could not reach their server are sent again
    once after :meth:`Fleet.wait_healthy`; if they still cannot, :class:`TrainingError` is raised.

    Args:
        fleet: the servers.
        model: served model name.
        api_key: bearer token.
        concurrency: requests in flight per server.
        timeout_s: per-attempt timeout.
        max_retries: the SDK's retries per request.
        image_format: ``png``: images travel as lossless PNG data URLs (the server sees exactly the pixels the
            local engine sees); ``jpeg``: as the OpenAI backend's JPEG (quality 90).
    """

    name = "replicas"
    thread_safe = True

    def __init__(self, fleet: Fleet, model: str, api_key: str | None = None, concurrency: int = 16,
                 timeout_s: float = 600.0, max_retries: int = 2, image_format: str = "png") -> None:
        super().__init__(model)
        self.image_format = image_format
        self.fleet, self.api_key = fleet, api_key
        self.concurrency, self.timeout_s, self.max_retries = concurrency, timeout_s, max_retries
        self._counter = itertools.count()
        self._lock = threading.Lock()
        self._backends: dict[str, OpenAIBackend] = {}
        self.chunk_size = max(8, 4 * concurrency * len(fleet.urls))

    def _backend(self, url: str) -> OpenAIBackend:
        with self._lock:
            if url not in self._backends:
                self._backends[url] = OpenAIBackend(self.model, base_url=url, concurrency=self.concurrency,
                                                    api_key=self.api_key, timeout_s=self.timeout_s,
                                                    max_retries=self.max_retries)
            return self._backends[url]

    def _spread(self, requests: Sequence[ChatRequest], idx: list[int], on_result: ResultCallback) -> list[int]:
        """Send ``requests[i] for i in idx`` over the servers; report results; return the unreachable indices."""
        urls = list(self.fleet.urls)
        with self._lock:
            routes = [next(self._counter) % len(urls) for _ in idx]
        parts: dict[int, list[int]] = {}
        for i, r in zip(idx, routes, strict=True):
            parts.setdefault(r, []).append(i)
        done: queue.Queue[tuple[int, str | Exception]] = queue.Queue()

        def send(r: int, mine: list[int]) -> None:
            reported: set[int] = set()

            def cb(k: int, res: str | Exception) -> None:
                reported.add(k)
                done.put((mine[k], res))

            try:
                self._backend(urls[r]).generate([requests[i] for i in mine], cb)
            except Exception as e:  # a broken client must not lose results: report the rest as failed
                for k, i in enumerate(mine):
                    if k not in reported:
                        done.put((i, e))

        unreachable: list[int] = []
        with ThreadPoolExecutor(max_workers=len(parts), thread_name_prefix="dppo-replica") as pool:
            for r, mine in parts.items():
                pool.submit(send, r, mine)
            for _ in range(len(idx)):
                i, res = done.get()
                if is_unreachable(res):
                    unreachable.append(i)
                else:
                    on_result(i, res)
        return unreachable

    def generate(self, requests: Sequence[ChatRequest], on_result: ResultCallback) -> None:
        """Generate every request (see the class docstring).

        Raises:
            TrainingError: some requests still cannot reach a server after it was restarted or waited for.
        """
        requests = [self._lossless(r) for r in requests]
        todo = list(range(len(requests)))
        for attempt in range(2):
            todo = self._spread(requests, todo, on_result)
            if not todo:
                return
            logger.warning("%d rollout request(s) could not reach their server; waiting for the servers %s",
                           len(todo), "and sending them again" if attempt == 0 else "")
            self.fleet.wait_healthy()
        raise TrainingError(f"{len(todo)} rollout request(s) still cannot reach the servers {self.fleet.urls} after "
                            "a restart; the step is resumable: run the same command with --resume")

    def _lossless(self, request: ChatRequest) -> ChatRequest:
        """PNG data URLs for the images (``image_format: png``); JPEG is left to the OpenAI backend."""
        conv = request.conversation
        if self.image_format != "png" or not conv.images:
            return request
        images = tuple(im if isinstance(im, str) else to_data_url(im, fmt="png") for im in conv.images)
        return dataclasses.replace(request, conversation=dataclasses.replace(conv, images=images))

    def close(self) -> None:
        with self._lock:
            for b in self._backends.values():
                b.close()
            self._backends.clear()
