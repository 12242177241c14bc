"""From a sample to what the model sees, once: :func:`render_sample` gives the sample's
:class:`~dppo_embodied.conversation.Conversation`.

Training (SFT rows, GRPO prompts, difficulty and diagnosis rollouts, the teacher) renders an
:class:`~dppo_embodied.types.EmbodiedSample`; ``dppo eval`` renders a benchmark doc, whose adapter has built the
official prompt (the ``tabletop_qa`` adapter builds it with :func:`prompt_text`, so an evaluated sample and a
trained one give the same conversation). Both go through :func:`render_sample`:

* text: :func:`prompt_text` of an ``EmbodiedSample`` (question, lettered options for ``mcq``, the answer
  instruction), or the doc's own ``prompt``;
* images: the one media loader (:mod:`dppo_embodied.media`): video frames first, then the images;
* system: the caller's (the teacher's instructions), else the doc's, else none (the checkpoint's default);
* layout: images before the text (``media_first``), the Qwen2.5-VL/TRL convention and the official evaluations'.

Torch-free.
"""

from __future__ import annotations

from typing import Any, Protocol

from dppo_embodied.conversation import Conversation
from dppo_embodied.media import HasMedia, MediaLoader, load_media
from dppo_embodied.types import AnswerType, EmbodiedSample

__all__ = ["ANSWER_INSTRUCTION", "PromptedSample", "prompt_text", "render_sample"]

ANSWER_INSTRUCTION = "Answer in <answer></answer>."
"""The last line of every :class:`~dppo_embodied.types.EmbodiedSample` prompt."""


class PromptedSample(HasMedia, Protocol):
    """A sample that carries its own prompt (a benchmark doc): ``prompt``, ``system``, ``images``, ``video``."""

    @property
    def prompt(self) -> str:
        """The exact user text."""
        ...

    @property
    def system(self) -> str | None:
        """An optional system prompt."""
        ...


def prompt_text(sample: EmbodiedSample) -> str:
    """The user text of a sample: question, lettered options for ``mcq``, and the answer instruction."""
    parts = [sample.question.strip()]
    if sample.answer_type is AnswerType.MCQ and sample.options:
        parts += [f"({letter}) {text}" for letter, text in zip(sample.option_letters, sample.options, strict=False)]
    parts.append(ANSWER_INSTRUCTION)
    return "\n".join(parts)


def render_sample(sample: EmbodiedSample | PromptedSample, loader: MediaLoader | None = None,
                  system: str | None = None, frames: int | None = None) -> Conversation:
    """The conversation the model sees for ``sample`` (module docstring for the rules).

    Args:
        sample: an :class:`~dppo_embodied.types.EmbodiedSample`, or a doc with ``prompt``/``system``/``images``/
            ``video`` (:class:`PromptedSample`).
        loader: the media loader (its frame count and cache); default: :func:`~dppo_embodied.media.load_media`.
        system: a system prompt that replaces the sample's own.
        frames: frames per video clip when no ``loader`` is given (default: the official 32).

    Returns:
        The :class:`~dppo_embodied.conversation.Conversation` (images decoded, RGB).

    Raises:
        MediaError: a missing, corrupt or oversized media file (naming it).
    """
    if isinstance(sample, EmbodiedSample):
        text, own_system = prompt_text(sample), None
    else:
        text, own_system = sample.prompt, sample.system
    if loader is not None:
        images: list[Any] = loader.load(sample)
    else:
        images = load_media(sample) if frames is None else load_media(sample, frames)
    return Conversation(text, tuple(images), system if system is not None else own_system)
