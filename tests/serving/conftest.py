"""Shared fixtures of the serving tests: a deterministic fake backend, and servers on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence

import pytest

from training.serving.batching import MicroBatcher
from training.serving.protocol import Completion, ConversationRequest, GenParams
from training.serving.server import ServerThread, create_app


class EchoBackend:
    """Replies ``"echo: <last user text> [<n images>]"`` (stop/length semantics applied), records batch sizes."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.batches: list[int] = []
        self.lock = threading.Lock()

    def generate(self, requests: Sequence[ConversationRequest], params: GenParams) -> list[list[Completion]]:
        with self.lock:
            self.batches.append(len(requests))
        time.sleep(self.delay_s)
        out = []
        for r in requests:
            text = f"echo: {r.text} [{len(r.images)}]"
            for s in params.stop:
                if s in text:
                    text = text[: text.index(s)]
            words = text.split()
            finish = "length" if len(words) > params.max_tokens else "stop"
            text = " ".join(words[: params.max_tokens])
            out.append([Completion(text, finish, min(len(words), params.max_tokens)) for _ in range(params.n)])
        return out

    def prompt_tokens(self, request: ConversationRequest) -> int:
        return len(request.text.split())


@pytest.fixture
def echo_server() -> Iterator[Callable[..., tuple[ServerThread, EchoBackend, MicroBatcher]]]:
    """``echo_server(api_key=None, delay_s=0, window_s=0.01)`` -> a running (server, backend, batcher)."""
    made: list[tuple[ServerThread, MicroBatcher]] = []

    def factory(api_key: str | None = None, delay_s: float = 0.0, window_s: float = 0.01, max_batch: int = 8
                ) -> tuple[ServerThread, EchoBackend, MicroBatcher]:
        backend = EchoBackend(delay_s)
        batcher = MicroBatcher(backend, max_batch_size=max_batch, window_s=window_s)
        srv = ServerThread(create_app(batcher, "echo", api_key=api_key, max_body_bytes=2 * 1024 * 1024)).start()
        made.append((srv, batcher))
        return srv, backend, batcher

    yield factory
    for srv, batcher in made:
        srv.stop()
        batcher.close()
