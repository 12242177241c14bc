"""What a model sees, once: a :class:`Conversation` (system text, images in the order shown, user text, layout).

Every path that asks a model something builds a :class:`Conversation` and hands it to a backend unchanged: the
local transformers policy and the TRL phases render it with :meth:`Conversation.chat_messages` (``{"type":
"image"}`` placeholders for the checkpoint's chat template), and OpenAI-compatible servers (``dppo serve``, vLLM)
receive :meth:`Conversation.openai_messages` (images as JPEG data URLs). Both wire forms come from the same object,
so a policy sees in deployment exactly the structure it saw in training; :meth:`Conversation.signature` is that
structure without the pixels, for tests that compare paths.

A multi-turn chat (``dppo serve`` accepts one) keeps its earlier turns in ``history``, in chat-template form; the
images of those turns come first in ``images``, in the order they appear. A chat kept exactly as a client sent it
(its last user turn in ``history`` too, text and images interleaved at will) leaves ``text`` empty and adds no
turn of its own.

Layout: ``media_first=True`` puts the images before the text (question answering, the Qwen2.5-VL/TRL
convention); ``media_first=False`` puts the static text first and the images last, so a serving engine's prefix
cache reuses the text across closed-loop steps (every step brings a new camera image).

Torch-free.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Conversation"]


@dataclass(frozen=True)
class Conversation:
    """One model input: an optional system prompt and one user turn of text and images.

    Attributes:
        text: the user text.
        images: decoded images in the order they are shown: ``PIL.Image.Image`` (RGB) or ``(H, W, 3)`` uint8
            arrays. Video frames are images here (sampled by the one media loader).
        system: the system prompt, or ``None`` for the checkpoint's default.
        media_first: images before the text (``True``) or after it (``False``).
        history: earlier turns of a multi-turn chat, oldest first: ``{"role": "user" | "assistant", "content":
            [{"type": "text", "text": ...} | {"type": "image"}, ...]}``; their images are the first
            :attr:`history_images` of ``images``, in order of appearance. Empty for a single question.
    """

    text: str
    images: Sequence[Any] = field(default_factory=tuple)
    system: str | None = None
    media_first: bool = True
    history: Sequence[dict[str, Any]] = field(default_factory=tuple)

    @property
    def history_images(self) -> int:
        """How many of ``images`` belong to the earlier turns."""
        return sum(p.get("type") == "image" for m in self.history for p in m["content"])

    def _content(self, image_parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        text_parts = [{"type": "text", "text": self.text}] if self.text or not image_parts else []
        return image_parts + text_parts if self.media_first else text_parts + image_parts

    def _turns(self, image_parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """System, earlier turns and the user turn, with ``image_parts`` (one per image) in order."""
        parts = iter(image_parts)
        msgs: list[dict[str, Any]] = []
        if self.system:
            msgs.append({"role": "system", "content": [{"type": "text", "text": self.system}]})
        for m in self.history:
            msgs.append({"role": m["role"], "content": [next(parts) if p.get("type") == "image" else dict(p)
                                                        for p in m["content"]]})
        own = list(parts)
        if own or self.text or not self.history or self.history[-1]["role"] != "user":
            msgs.append({"role": "user", "content": self._content(own)})
        return msgs

    def chat_messages(self) -> list[dict[str, Any]]:
        """Messages for a chat template / a TRL conversational prompt: images as ``{"type": "image"}`` placeholders.

        The images themselves travel beside the messages (``images=`` of the processor, TRL's ``images`` column).
        """
        return self._turns([{"type": "image"} for _ in self.images])

    def openai_messages(self, image_quality: int = 90, max_side: int | None = None) -> list[dict[str, Any]]:
        """OpenAI chat messages: the same structure with each image as a base64 JPEG data URL.

        Raises:
            MediaError: an image cannot be encoded.
        """
        from dppo_embodied.messages import image_part

        return self._turns([image_part(im, quality=image_quality, max_side=max_side) for im in self.images])

    def signature(self, with_pixels: bool = False) -> list[dict[str, Any]]:
        """The structure the model sees (roles, text, image positions and sizes), for comparing paths.

        Args:
            with_pixels: also include a hash of each image's RGB pixels.
        """
        msgs = self.chat_messages()
        sizes = iter([_describe(im, with_pixels) for im in self.images])
        for m in msgs:
            for part in m["content"]:
                if part["type"] == "image":
                    part["image"] = next(sizes)
        return msgs


def _describe(image: Any, with_pixels: bool) -> str:
    arr = np.asarray(image.convert("RGB")) if hasattr(image, "convert") else np.asarray(image)
    desc = "x".join(str(d) for d in arr.shape)
    if with_pixels:
        desc += ":" + hashlib.sha1(np.ascontiguousarray(arr, dtype=np.uint8).tobytes()).hexdigest()[:12]
    return desc
