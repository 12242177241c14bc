"""Shared fixtures of the serving tests: a deterministic fake backend, and servers on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from dppo_embodied.generation import ChatRequest, GenerationSettings
from inference.serving.batching import MicroBatcher
from inference.serving.protocol import Completion, Limits
from inference.serving.server import ServerThread, create_app


def last_text(request: ChatRequest) -> str:
    """The text of the request's last (user) message."""
    last = request.conversation.chat_messages()[-1]
    return " ".join(p["text"] for p in last["content"] if p["type"] == "text")

class EchoBackend:
    """Replies ``"echo: <last user text> [<n images>]"`` (stop/length semantics applied), records batch sizes and
    the texts of each batch. A word is a token; ``delay_s`` is the time one batch takes, cut short at the latest
    deadline of the batch (choices of requests whose deadline passed then end with ``"length"``)."""

    def __init__(self, delay_s: float = 0.0, max_model_len: int | None = 1024, keep_pixels: int | None = None) -> None:
        self.delay_s = delay_s
        self.max_model_len, self.keep_pixels = max_model_len, keep_pixels
        self.batches: list[int] = []
        self.texts: list[list[str]] = []
        self.lock = threading.Lock()

    def generate(self, requests: Sequence[ChatRequest], params: GenerationSettings,
                 deadlines: Sequence[float]) -> list[list[Completion]]:
        with self.lock:
            self.batches.append(len(requests))
            self.texts.append([last_text(r) for r in requests])
        t_end = time.monotonic() + self.delay_s
        time.sleep(max(0.0, min(t_end, max(deadlines)) - time.monotonic()))
        out = []
        for r, deadline in zip(requests, deadlines, strict=True):
            if deadline < t_end:  # cut by its deadline before the reply was complete
                out.append([Completion("echo", "length", 1, deadline_hit=True) for _ in range(params.n)])
                continue
            text = f"echo: {last_text(r)} [{len(r.conversation.images)}]"
            for s in params.stop:
                if s in text:
                    text = text[: text.index(s)]
            words = text.split()
            finish = "length" if len(words) > params.max_tokens else "stop"
            text = " ".join(words[: params.max_tokens])
            out.append([Completion(text, finish, min(len(words), params.max_tokens)) for _ in range(params.n)])
        return out

    def prompt_tokens(self, request: ChatRequest) -> int:
        """Words of every message, plus one token per image."""
        words = 0
        for m in request.conversation.chat_messages():
            words += sum(len(p["text"].split()) for p in m["content"] if p["type"] == "text")
        return words + len(request.conversation.images)


@pytest.fixture
def echo_server() -> Iterator[Callable[..., tuple[ServerThread, EchoBackend, MicroBatcher]]]:
    """``echo_server(api_key=None, delay_s=0, window_s=0.01, ...)`` -> a running (server, backend, batcher)."""
    made: list[tuple[ServerThread, MicroBatcher]] = []

    def factory(api_key: str | None = None, delay_s: float = 0.0, window_s: float = 0.01, max_batch: int = 8,
                limits: Limits | None = None, max_model_len: int | None = 1024, **app_kw: Any
                ) -> tuple[ServerThread, EchoBackend, MicroBatcher]:
        backend = EchoBackend(delay_s, max_model_len=max_model_len)
        batcher = MicroBatcher(backend, max_batch_size=max_batch, window_s=window_s)
        srv = ServerThread(create_app(batcher, "echo", api_key=api_key, max_body_bytes=2 * 1024 * 1024,
                                      limits=limits, **app_kw)).start()
        made.append((srv, batcher))
        return srv, backend, batcher

    yield factory
    for srv, batcher in made:
        srv.stop()
        batcher.close()
