"""One generation request for every backend: a :class:`~dppo_embodied.conversation.Conversation` plus
:class:`GenerationSettings`.

``dppo eval``'s backends (``hf``, ``openai``, ``vllm``, ``fake``), ``dppo serve``'s batcher and the metaloop's
in-process evaluation take a :class:`ChatRequest`; the local policy (:class:`inference.policy.VLMPolicy`) generates
for conversations that share one :class:`GenerationSettings`, so callers group requests by
:attr:`ChatRequest.settings` (it is hashable). Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dppo_embodied.conversation import Conversation

__all__ = ["ChatRequest", "GenerationSettings"]


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
    """

    conversation: Conversation
    settings: GenerationSettings = field(default_factory=GenerationSettings)
    id: str = ""
