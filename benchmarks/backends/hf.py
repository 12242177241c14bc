"""The ``hf`` backend: a local transformers image-text-to-text model, batched greedy generation.

The model is loaded with :func:`inference.policy.load_policy` (the ``inference`` layer lies below ``benchmarks``,
imported when the backend is built), so any checkpoint that :func:`inference.models.load_vlm` loads works: our own
checkpoints, the tiny VLM and real Qwen2.5-VL. Under ``accelerate launch`` each process loads the model on its
own GPU (``LOCAL_RANK``) and the runner shards the samples across processes (``RANK``/``WORLD_SIZE``).

In process, around a live model (the metaloop's held-out evaluation: no reload from disk), pass the ready
:class:`~inference.policy.VLMPolicy` as ``policy``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from benchmarks.backends.base import Backend, ResultCallback, by_settings
from dppo_embodied.generation import ChatRequest

logger = logging.getLogger(__name__)


def _auto_device() -> str | None:
    try:
        import torch
    except ImportError:
        return None
    if torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0')) % max(1, torch.cuda.device_count())}"
    return None


class HFBackend(Backend):
    """Local model backend.

    Args:
        model: checkpoint folder.
        batch_size: requests per forward batch.
        dtype: ``float32``, ``bfloat16``, ``float16`` or ``auto``.
        device: ``auto`` (the process's GPU when CUDA is available, else CPU), ``cpu``, ``cuda:0``...
        max_pixels: optional image budget of the processor.
        policy: a ready :class:`~inference.policy.VLMPolicy` (in-process evaluation); ``model`` then only names it.
    """

    name = "hf"

    def __init__(self, model: str, batch_size: int = 8, dtype: str = "auto", device: str = "auto",
                 max_pixels: int | None = None, policy: Any = None) -> None:
        super().__init__(model)
        self.batch_size = batch_size
        self.chunk_size = max(batch_size, 4 * batch_size)
        if policy is not None:
            self.policy = policy
            return
        dev = _auto_device() if device == "auto" else (None if device == "cpu" else device)
        if dtype == "auto":
            dtype = "bfloat16" if dev and dev.startswith("cuda") else "float32"
        from inference.policy import load_policy  # torch: imported only when the backend is built

        self.policy = load_policy(model, dtype=dtype, device=dev, max_pixels=max_pixels, batch_size=batch_size)
        logger.info("hf backend: %s on %s (%s), batch %d", model, dev or "cpu", dtype, batch_size)

    def generate(self, requests: Sequence[ChatRequest], on_result: ResultCallback) -> None:
        for settings, idx in by_settings(requests).items():
            kw = {"max_new_tokens": settings.max_tokens, "temperature": settings.temperature, "top_p": settings.top_p,
                  "stop": list(settings.stop) or None}
            for start in range(0, len(idx), self.batch_size):
                batch = idx[start: start + self.batch_size]
                convs = [requests[i].conversation for i in batch]
                try:
                    texts: list[Any] = list(self.policy.generate(convs, **kw))
                except Exception as e:  # one bad sample must not sink the batch: retry one by one
                    if len(batch) == 1:
                        on_result(batch[0], e)
                        continue
                    logger.warning("batch of %d failed (%s); retrying one by one", len(batch), e)
                    for i, conv in zip(batch, convs, strict=False):
                        try:
                            on_result(i, self.policy.generate([conv], **kw)[0])
                        except Exception as e1:
                            on_result(i, e1)
                    continue
                for i, text in zip(batch, texts, strict=False):
                    on_result(i, str(text))
