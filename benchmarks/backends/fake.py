"""An instant backend for tests, benchmarks and replays: answers from a callable, a replay file or a constant."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from benchmarks.backends.base import Backend, ResultCallback
from dppo_embodied.errors import DataError
from dppo_embodied.generation import ChatRequest


class FakeBackend(Backend):
    """Answers every request instantly.

    Args:
        model: a JSONL file of ``{"id", "response"}`` (replay: unknown ids answer ``""``), or a constant answer
            (default ``"A"``).
        responder: optional ``responder(request) -> str`` (tests); raising makes that sample fail.
        chunk_size: requests per chunk handed over by the runner.
    """

    name = "fake"
    thread_safe = True  # the responder runs in the caller's thread

    def __init__(self, model: str = "A", responder: Callable[[ChatRequest], str] | None = None,
                 chunk_size: int = 64) -> None:
        super().__init__(model)
        self.chunk_size = chunk_size
        self.responder = responder
        self.replay: dict[str, str] | None = None
        if responder is None and model and Path(model).is_file():
            self.replay = {}
            for lineno, line in enumerate(Path(model).read_text(encoding="utf-8").splitlines(), start=1):
                if line.strip():
                    try:
                        rec = json.loads(line)
                        self.replay[str(rec["id"])] = str(rec.get("response") or "")
                    except (ValueError, KeyError, TypeError) as e:
                        raise DataError(f"{model}:{lineno}: expected {{\"id\": ..., \"response\": ...}}: {e}") from e

    def generate(self, requests: Sequence[ChatRequest], on_result: ResultCallback) -> None:
        for i, r in enumerate(requests):
            try:
                if self.responder is not None:
                    text = self.responder(r)
                elif self.replay is not None:
                    text = self.replay.get(r.id, "")
                else:
                    text = self.model or "A"
            except Exception as e:
                on_result(i, e)
                continue
            on_result(i, text)
