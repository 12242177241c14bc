"""The model behind ``dppo serve``'s transformers backend: generation with per-request deadlines, exact prompt token
counts (text and image tokens) and the model's context length and image size."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from dppo_embodied.generation import ChatRequest, GenerationSettings
from inference.serving.protocol import Completion, RequestError, apply_stop

logger = logging.getLogger(__name__)

CHARS_PER_TOKEN_BOUND = 32
"""Text longer than this many characters per token of room is refused without tokenizing it (tokenizing megabytes
takes seconds; real text averages 1-5 characters per token)."""


def check_context(max_model_len: int | None, max_tokens: int, prompt_tokens: int | None = None,
                  text_chars: int | None = None) -> None:
    """Refuse a prompt that, with ``max_tokens``, does not fit the model's context.

    Called twice: with ``text_chars`` before tokenizing (a cheap bound) and with ``prompt_tokens`` after.

    Raises:
        RequestError: 400 naming the context length and the room left for the prompt.
    """
    if max_model_len is None:
        return
    room = max_model_len - max_tokens
    if room <= 0:
        raise RequestError(f"max_tokens {max_tokens} leaves no room for the prompt in this model's context of "
                           f"{max_model_len} tokens; lower max_tokens", param="max_tokens")
    if text_chars is not None and text_chars > CHARS_PER_TOKEN_BOUND * room:
        raise RequestError(
            f"the prompt has {text_chars:,} characters, far beyond this model's context of {max_model_len} tokens "
            f"({room} left for the prompt with max_tokens {max_tokens}); shorten it", param="messages")
    if prompt_tokens is not None and prompt_tokens > room:
        raise RequestError(
            f"the prompt is {prompt_tokens} tokens (text and images); with max_tokens {max_tokens} it exceeds this "
            f"model's context of {max_model_len} tokens: the prompt may use at most {room} tokens. Shorten the "
            "prompt, send fewer or smaller images, or lower max_tokens", param="messages")


class Backend(Protocol):
    """What the batcher and the server need from a model.

    Attributes:
        max_model_len: the context length in tokens (prompt + completion); ``None`` when unknown (no check).
        keep_pixels: the processor's largest image in pixels (decoded images are downscaled to it; ``None``: as
            sent).
    """

    max_model_len: int | None
    keep_pixels: int | None

    def generate(self, requests: Sequence[ChatRequest], params: GenerationSettings,
                 deadlines: Sequence[float]) -> list[list[Completion]]:
        """``params.n`` completions per request, in request order; request ``i`` stops at ``deadlines[i]``
        (``time.monotonic()``), its choices then ending with ``finish_reason="length"`` and ``deadline_hit``."""
        ...

    def prompt_tokens(self, request: ChatRequest) -> int:
        """Prompt tokens of a request as the model sees them (chat template, text and image tokens)."""
        ...


def _model_context(model: Any) -> int | None:
    cfg = getattr(model, "config", None)
    for c in (getattr(cfg, "text_config", None), cfg):
        v = getattr(c, "max_position_embeddings", None)
        if isinstance(v, int) and v > 0:
            return v
    return None


def _processor_max_pixels(processor: Any) -> int | None:
    ip = getattr(processor, "image_processor", None)
    size = getattr(ip, "size", None)
    for v in (getattr(ip, "max_pixels", None), getattr(size, "longest_edge", None),
              size.get("longest_edge") if isinstance(size, dict) else None):
        if isinstance(v, int) and v > 0:
            return v
    return None


class PolicyBackend:
    """:class:`Backend` over :class:`inference.policy.VLMPolicy` (any of our checkpoints, tiny or real).

    Args:
        policy: a loaded :class:`~inference.policy.VLMPolicy`.
        max_model_len: context length to enforce (``None``: the model's ``max_position_embeddings``); it may not
            exceed the model's.

    Raises:
        ValueError: ``max_model_len`` above the model's own context length.
    """

    def __init__(self, policy: Any, max_model_len: int | None = None) -> None:
        self.policy = policy
        self.tokenizer = policy.processor.tokenizer
        model_len = _model_context(policy.model)
        if max_model_len is not None and model_len is not None and max_model_len > model_len:
            raise ValueError(f"max_model_len {max_model_len} exceeds the model's context of {model_len} tokens")
        self.max_model_len = max_model_len or model_len
        self.keep_pixels = _processor_max_pixels(policy.processor)
        from inference.serving.deadlines import finish_token_ids

        self._finish_ids = finish_token_ids(policy.model, self.tokenizer)

    def _count(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False)) if text else 0

    def prompt_tokens(self, request: ChatRequest) -> int:
        """Tokens of the rendered chat template, each image counted as the tokens the processor expands it to."""
        processor = self.policy.processor
        conv = request.conversation
        text = processor.apply_chat_template(conv.chat_messages(), add_generation_prompt=True, tokenize=False)
        n = self._count(text)
        if not conv.images:
            return n
        sizes = [[im.height, im.width] for im in conv.images]
        try:
            per_image = processor._get_num_multimodal_tokens(image_sizes=sizes).num_image_tokens
        except (AttributeError, TypeError, KeyError) as e:  # a processor without the helper: run it for real
            logger.debug("counting image tokens with the full processor (%s)", e)
            return int(processor(text=[text], images=[list(conv.images)])["input_ids"].shape[1])
        return n + sum(per_image) - len(conv.images)  # each image is one placeholder token in the template

    def generate(self, requests: Sequence[ChatRequest], params: GenerationSettings,
                 deadlines: Sequence[float]) -> list[list[Completion]]:
        """Generate with :meth:`VLMPolicy.generate` under the deadlines; apply OpenAI stop/finish semantics.

        A request's ``seed`` (the OpenAI field) makes its sampled choices repeatable whatever it is batched with."""
        from transformers import StoppingCriteriaList

        from inference.serving.deadlines import DeadlineStop

        n = params.n if params.temperature > 0 else 1  # greedy choices are identical: generate one, copy it
        made: list[tuple[list[int], DeadlineStop]] = []

        def criteria(idx: list[int]) -> StoppingCriteriaList:
            stop = DeadlineStop([deadlines[i] for i in idx for _ in range(n)], self._finish_ids)
            made.append((list(idx), stop))
            return StoppingCriteriaList([stop])

        raw = self.policy.generate([r.conversation for r in requests], max_new_tokens=params.max_tokens,
                                   temperature=params.temperature, num_return_sequences=n, top_p=params.top_p,
                                   stop=list(params.stop) or None, stopping_criteria=criteria,
                                   seeds=[r.seed for r in requests])
        cut = {i: stop.cut[j * n:(j + 1) * n] for idx, stop in made for j, i in enumerate(idx)}
        out: list[list[Completion]] = []
        for i, r in enumerate(raw):
            texts = [r] if isinstance(r, str) else list(r)
            texts = texts * (params.n // len(texts))
            choices = []
            for k, t in enumerate(texts):
                text, stopped = apply_stop(t, params.stop)
                hit = bool(cut.get(i, [False] * n)[k % n]) and not stopped
                finish = "stop" if stopped or (not hit and self._count(t) < params.max_tokens) else "length"
                choices.append(Completion(text=text, finish_reason=finish, deadline_hit=hit,
                                          completion_tokens=min(self._count(text), params.max_tokens)))
            out.append(choices)
        return out
