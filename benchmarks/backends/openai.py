"""The ``openai`` backend: any OpenAI-compatible chat server (``vllm serve``, SGLang, hosted APIs), concurrently.

Requests go through :class:`dppo_embodied.client.ChatClient` (retries, timeouts, ordered results); each request's
conversation is sent as :meth:`~dppo_embodied.conversation.Conversation.openai_messages` (images as JPEG data URLs,
in the conversation's layout). Throughput scales with
``concurrency`` up to what the server batches (vLLM tensor/data parallel behind one URL).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchmarks.backends.base import Backend, ResultCallback, by_settings
from dppo_embodied.client import ChatClient, ChatResponse, ClientConfig
from dppo_embodied.errors import MediaError
from dppo_embodied.generation import ChatRequest


class OpenAIBackend(Backend):
    """Chat-completions client backend.

    Args:
        model: served model name.
        base_url: API root with ``/v1`` (default ``http://127.0.0.1:8000/v1``).
        concurrency: parallel requests.
        api_key: bearer token (default: ``DPPO_API_KEY`` / ``OPENAI_API_KEY``).
        timeout_s: per-attempt timeout.
        max_retries: retries per request.
        image_max_side: optional downscale bound of images (pixels).
        extra_body: extra request fields (e.g. ``{"chat_template_kwargs": {"enable_thinking": false}}``).
    """

    name = "openai"
    thread_safe = True  # the chat client is thread-safe

    def __init__(self, model: str, base_url: str = "http://127.0.0.1:8000/v1", concurrency: int = 8,
                 api_key: str | None = None, timeout_s: float = 600.0, max_retries: int = 3,
                 image_max_side: int | None = None, extra_body: dict[str, Any] | None = None) -> None:
        super().__init__(model)
        self.config = ClientConfig(base_url=base_url, model=model, api_key=api_key, concurrency=concurrency,
                                   timeout_s=timeout_s, max_retries=max_retries, extra_body=extra_body or {})
        self.client = ChatClient(self.config)
        self.image_max_side = image_max_side
        self.chunk_size = max(8, 4 * concurrency)

    def generate(self, requests: Sequence[ChatRequest], on_result: ResultCallback) -> None:
        messages: dict[int, Any] = {}
        for i, r in enumerate(requests):
            try:
                messages[i] = r.conversation.openai_messages(max_side=self.image_max_side)
            except MediaError as e:
                on_result(i, e)
        for settings, idx in by_settings(requests).items():
            idx = [i for i in idx if i in messages]

            def done(k: int, res: ChatResponse | Exception, idx: list[int] = idx) -> None:
                on_result(idx[k], res.text if isinstance(res, ChatResponse) else res)

            kw: dict[str, Any] = {"stop": list(settings.stop)} if settings.stop else {}
            if settings.top_p != 1.0:
                kw["top_p"] = settings.top_p
            seeds = [{"seed": requests[i].seed} if requests[i].seed is not None else {} for i in idx]
            self.client.chat_many([messages[i] for i in idx], on_result=done, max_tokens=settings.max_tokens,
                                  temperature=settings.temperature, per_request=seeds if any(seeds) else None, **kw)

    def close(self) -> None:
        self.client.close()
