"""Generation backends by name: ``hf`` (local transformers), ``openai`` (any OpenAI-compatible server),
``vllm`` (offline engine) and ``fake`` (instant; tests, benchmarks, replays). Loaded lazily."""

from __future__ import annotations

from typing import Any

from benchmarks.backends.base import Backend, ResultCallback
from dppo_embodied.generation import ChatRequest, GenerationSettings
from dppo_embodied.registry import Registry

__all__ = ["BACKENDS", "Backend", "ChatRequest", "GenerationSettings", "ResultCallback", "make_backend"]

BACKENDS: Registry[type[Backend]] = Registry("backend")
BACKENDS.register("hf", "benchmarks.backends.hf:HFBackend", help="local transformers model, batched greedy")
BACKENDS.register("openai", "benchmarks.backends.openai:OpenAIBackend", help="OpenAI-compatible chat server")
BACKENDS.register("vllm", "benchmarks.backends.vllm:VLLMBackend", help="vLLM offline engine (needs vllm)")
BACKENDS.register("fake", "benchmarks.backends.fake:FakeBackend", help="instant answers: constant or replay file")


def make_backend(name: str, model: str, **kwargs: Any) -> Backend:
    """Create a backend by name; ``kwargs`` go to its constructor (``None`` values are dropped)."""
    return BACKENDS.get(name)(model, **{k: v for k, v in kwargs.items() if v is not None})
