"""One batched generation function for a local VLM, shared by evaluation (``hf`` backend), serving and rollouts.

``VLMPolicy.generate(conversations)`` takes :class:`~dppo_embodied.conversation.Conversation` s (what the model
sees, built by the one sample renderer or the closed-loop step renderer; images as PIL images, arrays or paths,
opened by the one image opener :func:`dppo_embodied.images.load_image`) and returns one text per conversation (or
``n`` texts each when sampling several). Prompts are rendered with the checkpoint's own chat template from
:meth:`~dppo_embodied.conversation.Conversation.chat_messages`, padded on the left, and generated in batches.
Callers holding :class:`~dppo_embodied.generation.ChatRequest` s group them by their settings.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dppo_embodied.conversation import Conversation
from dppo_embodied.images import load_image

logger = logging.getLogger(__name__)

#: Sampling follows the request alone (temperature, top_p): ``transformers``' default top-k of 50 and a
#: checkpoint's ``generation_config`` knobs (e.g. ``top_k: 1`` or ``repetition_penalty: 1.05`` in instruct models)
#: are switched off, as in TRL's GRPO sampling, vLLM's ``SamplingParams`` and the OpenAI API. Otherwise the
#: success rates the difficulty step estimates here would be those of another policy than the one GRPO samples
#: (with ``top_k: 1``, every "sampled" rollout would be the greedy answer).
SAMPLING_OVERRIDES: dict[str, Any] = {"repetition_penalty": 1.0, "min_p": None, "typical_p": 1.0}


class VLMPolicy:
    """Batched greedy/sampled generation with a transformers image-text-to-text model.

    Args:
        model: a loaded model (e.g. from :func:`inference.models.load_vlm`).
        processor: its processor (left padding).
        max_new_tokens: generation cap.
        batch_size: requests per forward batch.
    """

    def __init__(self, model: Any, processor: Any, max_new_tokens: int = 64, batch_size: int = 8) -> None:
        self.model, self.processor = model, processor
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size
        self.processor.tokenizer.padding_side = "left"

    @classmethod
    def from_pretrained(cls, path: str | Path, dtype: str = "float32", device: str | None = None,
                        max_pixels: int | None = None, **kw: Any) -> VLMPolicy:
        """Load a checkpoint folder (tiny or real) and wrap it."""
        from inference.models import load_vlm

        model, processor = load_vlm(path, dtype=dtype, device=device, max_pixels=max_pixels)
        return cls(model, processor, **kw)

    @property
    def device(self) -> Any:
        """Device of the model parameters."""
        return next(self.model.parameters()).device

    def _encode(self, batch: Sequence[Conversation]) -> Any:
        texts = [self.processor.apply_chat_template(c.chat_messages(), add_generation_prompt=True, tokenize=False)
                 for c in batch]
        images = [[load_image(im) for im in c.images] for c in batch]
        kwargs: dict[str, Any] = {"text": texts, "return_tensors": "pt", "padding": True}
        if any(images):
            if not all(images):  # the processor needs images for every row or none: split mixed batches upstream
                raise ValueError("a batch mixes requests with and without images; use generate(), which splits it")
            kwargs["images"] = images
        return self.processor(**kwargs).to(self.device)

    def generate(self, requests: Sequence[Conversation], max_new_tokens: int | None = None,
                 temperature: float = 0.0, num_return_sequences: int = 1, top_p: float = 1.0,
                 stop: Sequence[str] | None = None,
                 stopping_criteria: Callable[[list[int]], Any] | None = None,
                 seeds: Sequence[int | None] | None = None) -> list[list[str]] | list[str]:
        """Generate for every conversation with the same settings.

        Args:
            requests: the conversations.
            max_new_tokens: new tokens at most (default: the policy's ``max_new_tokens``).
            temperature: 0 = greedy (the checkpoint's own generation config applies); > 0 samples from the
                temperature-scaled distribution cut to ``top_p`` only (:data:`SAMPLING_OVERRIDES`).
            num_return_sequences: completions per conversation.
            top_p: nucleus sampling mass (with ``temperature > 0``).
            stop: stop strings.
            stopping_criteria: optional factory called once per generation batch with the indices (into
                ``requests``) of that batch's requests; it returns a ``transformers.StoppingCriteriaList`` for the
                batch, whose rows are those requests each repeated ``num_return_sequences`` times (``dppo serve``
                stops each row at its request's deadline this way).
            seeds: one sampling seed per request (``None`` entries: drawn from torch's generator). With seeds and
                ``temperature > 0`` every row samples from its own generator
                (:class:`inference.sampling.SeededSampler`), so a seeded request's answers do not depend on the
                requests batched with it; without seeds (or greedy) they are ignored.

        Returns:
            One string per request when ``num_return_sequences == 1``, else one list of ``n`` strings per request.
        """
        import torch

        n = num_return_sequences
        out: list[list[str]] = [[] for _ in requests]
        # keep image and text-only requests in separate batches
        order = sorted(range(len(requests)), key=lambda i: (len(requests[i].images) == 0, len(requests[i].images)))
        groups: list[list[int]] = []
        for i in order:
            if groups and len(groups[-1]) < self.batch_size and (
                bool(requests[groups[-1][0]].images) == bool(requests[i].images)
            ):
                groups[-1].append(i)
            else:
                groups.append([i])
        gen_kwargs: dict[str, Any] = {
            "max_new_tokens": max_new_tokens or self.max_new_tokens,
            "num_return_sequences": n,
            "pad_token_id": self.processor.tokenizer.pad_token_id,
        }
        seeded = temperature > 0 and seeds is not None and any(x is not None for x in seeds)
        if seeds is not None and len(seeds) != len(requests):
            raise ValueError(f"{len(seeds)} seeds for {len(requests)} requests")
        if seeded:  # greedy over the seeded sampler's one finite logit; rows expanded here, not by generate
            gen_kwargs.update(do_sample=False, num_return_sequences=1, **SAMPLING_OVERRIDES)
        elif temperature > 0:
            gen_kwargs.update(do_sample=True, temperature=temperature, top_p=top_p, top_k=0, **SAMPLING_OVERRIDES)
        else:
            gen_kwargs.update(do_sample=False)
        if stop:
            gen_kwargs["stop_strings"] = list(stop)
            gen_kwargs["tokenizer"] = self.processor.tokenizer
        for idx in groups:
            extra: dict[str, Any] = {}
            if seeded:
                from inference.sampling import SeededSampler, row_generators

                assert seeds is not None
                inputs = self._encode([requests[i] for i in idx for _ in range(n)])
                gens = row_generators([seeds[i] for i in idx], n, device=self.device)  # on the logits' device
                extra["logits_processor"] = [SeededSampler(gens, temperature, top_p)]
            else:
                inputs = self._encode([requests[i] for i in idx])
            if stopping_criteria is not None:
                extra["stopping_criteria"] = stopping_criteria(idx)
            with torch.inference_mode():
                ids = self.model.generate(**inputs, **gen_kwargs, **extra)
            texts = self.processor.batch_decode(ids[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
            for j, i in enumerate(idx):
                out[i] = [t.strip() for t in texts[j * n:(j + 1) * n]]
        return [o[0] for o in out] if n == 1 else out


def load_policy(path: str | Path, **kw: Any) -> VLMPolicy:
    """Load a checkpoint as a :class:`VLMPolicy` (the ``hf`` benchmark backend's loader)."""
    return VLMPolicy.from_pretrained(path, **kw)
