"""The ``vllm`` backend: vLLM's offline engine (``vllm.LLM.chat``) in this process, for GPU machines.

Needs ``vllm`` importable; otherwise :class:`~dppo_embodied.errors.DependencyNotInstalled` names the install.
Each conversation is passed as :meth:`~dppo_embodied.conversation.Conversation.openai_messages` (images as data
URLs), greedy decoding, one ``chat`` call per chunk (vLLM batches
internally). For multi-GPU, pass ``tensor_parallel_size`` or serve with ``vllm serve`` and use ``openai``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchmarks.backends.base import Backend, ResultCallback, by_settings
from dppo_embodied.errors import DependencyNotInstalled, MediaError
from dppo_embodied.generation import ChatRequest


def _vllm() -> Any:
    try:
        import vllm
    except ImportError as e:
        raise DependencyNotInstalled("vllm", "vllm", detail="the offline engine needs a CUDA machine: pip install "
                                     "vllm (or serve the model with `vllm serve` and use --backend openai)") from e
    return vllm


class VLLMBackend(Backend):
    """Offline vLLM engine.

    Args:
        model: checkpoint folder or hub id already in the local cache.
        tensor_parallel_size: GPUs per model.
        max_model_len: optional context cap.
        limit_images: maximum images per prompt (video frames included).
        gpu_memory_utilization: vLLM's memory fraction.
    """

    name = "vllm"
    chunk_size = 256

    def __init__(self, model: str, tensor_parallel_size: int = 1, max_model_len: int | None = None,
                 limit_images: int = 64, gpu_memory_utilization: float = 0.9) -> None:
        super().__init__(model)
        vllm = _vllm()
        kw: dict[str, Any] = {"model": model, "tensor_parallel_size": tensor_parallel_size,
                              "limit_mm_per_prompt": {"image": limit_images},
                              "gpu_memory_utilization": gpu_memory_utilization}
        if max_model_len:
            kw["max_model_len"] = max_model_len
        self.llm = vllm.LLM(**kw)
        self.sampling_params = vllm.SamplingParams

    def generate(self, requests: Sequence[ChatRequest], on_result: ResultCallback) -> None:
        msgs: dict[int, Any] = {}
        for i, r in enumerate(requests):
            try:
                msgs[i] = r.conversation.openai_messages()
            except MediaError as e:
                on_result(i, e)
        for settings, idx in by_settings(requests).items():
            idx = [i for i in idx if i in msgs]
            if not idx:
                continue
            params = [self.sampling_params(max_tokens=settings.max_tokens, temperature=settings.temperature,
                                           top_p=settings.top_p, stop=list(settings.stop) or None,
                                           seed=requests[i].seed) for i in idx]  # one per request: its own seed
            try:
                outs = self.llm.chat([msgs[i] for i in idx], params, use_tqdm=False)
            except Exception as e:
                for i in idx:
                    on_result(i, e)
                continue
            for i, out in zip(idx, outs, strict=False):
                on_result(i, out.outputs[0].text if out.outputs else "")
