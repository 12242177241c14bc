"""The backend interface: turn :class:`~dppo_embodied.generation.ChatRequest` s (a conversation plus generation
settings, the one request type) into texts, reporting each result as it finishes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

from dppo_embodied.generation import ChatRequest, GenerationSettings

#: ``on_result(index, text_or_error)``: called once per request, in completion order, in the calling thread.
ResultCallback = Callable[[int, "str | Exception"], None]


def by_settings(requests: Sequence[ChatRequest]) -> dict[GenerationSettings, list[int]]:
    """Indices of ``requests`` grouped by their generation settings (first-seen order)."""
    groups: dict[GenerationSettings, list[int]] = defaultdict(list)
    for i, r in enumerate(requests):
        groups[r.settings].append(i)
    return dict(groups)


class Backend:
    """Base class. Subclasses implement :meth:`generate` and may override :attr:`chunk_size` and :meth:`close`.

    Attributes:
        name: backend name (``hf``, ``openai``, ``vllm``, ``fake``).
        model: the model path or name.
        chunk_size: how many requests the runner hands over at once (results are saved per request as they
            finish; a chunk is also the fsync unit).
        thread_safe: :meth:`generate` may be called from several threads at once (concurrent closed-loop
            episodes then send their decisions directly; otherwise they are batched into one call at a time).
    """

    name = "base"
    chunk_size = 32
    thread_safe = False

    def __init__(self, model: str = "") -> None:
        self.model = model

    def generate(self, requests: Sequence[ChatRequest], on_result: ResultCallback) -> None:  # pragma: no cover
        """Generate every request (one completion each, ``settings.n`` is ignored); call ``on_result(i, text)`` or
        ``on_result(i, error)`` once per request."""
        raise NotImplementedError

    def close(self) -> None:
        """Release resources (idempotent)."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
