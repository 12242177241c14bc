"""The backend interface: turn prompt requests into texts, reporting each result as it finishes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

#: ``on_result(index, text_or_error)``: called once per request, in completion order, in the calling thread.
ResultCallback = Callable[[int, "str | Exception"], None]


@dataclass
class Request:
    """One generation request.

    Attributes:
        id: the sample id (for logs).
        prompt: user text.
        images: RGB PIL images shown before the text (video frames first).
        system: optional system prompt.
        max_new_tokens: generation cap.
        temperature: 0 = greedy.
    """

    id: str
    prompt: str
    images: list[Any] = field(default_factory=list)
    system: str | None = None
    max_new_tokens: int = 4096
    temperature: float = 0.0


class Backend:
    """Base class. Subclasses implement :meth:`generate` and may override :attr:`chunk_size` and :meth:`close`.

    Attributes:
        name: backend name (``hf``, ``openai``, ``vllm``, ``fake``).
        model: the model path or name.
        chunk_size: how many requests the runner hands over at once (results are saved per request as they
            finish; a chunk is also the fsync unit).
    """

    name = "base"
    chunk_size = 32

    def __init__(self, model: str = "") -> None:
        self.model = model

    def generate(self, requests: Sequence[Request], on_result: ResultCallback) -> None:  # pragma: no cover
        """Generate every request; call ``on_result(i, text)`` or ``on_result(i, error)`` once per request."""
        raise NotImplementedError

    def close(self) -> None:
        """Release resources (idempotent)."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
