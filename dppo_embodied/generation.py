"""One generation request for every backend: a :class:`~dppo_embodied.conversation.Conversation` plus
:class:`GenerationSettings`.

``dppo eval``'s backends (``hf``, ``openai``, ``vllm``, ``fake``), ``dppo serve``'s batcher and the metaloop's
in-process evaluation take a :class:`ChatRequest`; the local policy (:class:`inference.policy.VLMPolicy`) generates
for conversations that share one :class:`GenerationSettings`, so callers group requests by
:attr:`ChatRequest.settings` (it is hashable). Torch-free.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

from dppo_embodied.conversation import Conversation

__all__ = ["ChatRequest", "GenerationSettings", "request_seed"]


@dataclass(frozen=True)
class GenerationSettings:
    """How to generate: requests with equal settings can share a batch.

    Attributes:
        max_tokens: new tokens at most.
        temperature: 0 = greedy.
        top_p: nucleus sampling mass (with ``temperature > 0``).
        stop: stop strings (OpenAI semantics: the stop string is not returned).
        n: completions per request.
    """

    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    n: int = 1

    def key(self) -> tuple[int, float, float, tuple[str, ...], int]:
        """Batching key: requests that generate with identical settings."""
        return (self.max_tokens, self.temperature, self.top_p, self.stop, self.n)


@dataclass(frozen=True)
class ChatRequest:
    """One request: what the model sees and how to generate.

    Attributes:
        conversation: the model input (system, earlier turns, images, text).
        settings: generation settings.
        id: the sample id (logs, replays); empty when there is none.
        seed: this request's sampling seed (:func:`request_seed`), sent to serving engines (the OpenAI ``seed``
            field, vLLM's ``SamplingParams.seed``) so that sampled answers repeat from run to run; ``None`` = the
            engine's own generator. In-process generation samples from torch's generator and ignores it.
    """

    conversation: Conversation
    settings: GenerationSettings = field(default_factory=GenerationSettings)
    id: str = ""
    seed: int | None = None


def request_seed(seed: int, key: str) -> int:
    """A stable 31-bit sampling seed for one rollout: ``key`` names it (e.g. ``<sample id>#<rollout index>``), so
    the k sampled answers to one question get k different seeds, and a rerun gets the same ones."""
    return zlib.crc32(f"{seed}:{key}".encode()) & 0x7FFFFFFF
