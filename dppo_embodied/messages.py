"""OpenAI chat messages with images as base64 JPEG data URLs: :func:`build_messages` (a one-turn
:class:`~dppo_embodied.conversation.Conversation`'s :meth:`~dppo_embodied.conversation.Conversation.openai_messages`),
:func:`image_part` (defined beside the conversation).

Torch-free. Re-exported by :mod:`dppo_embodied.client`, the usual import path.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from dppo_embodied.conversation import Conversation, image_part
from dppo_embodied.images import ImageLike

__all__ = ["Message", "build_messages", "image_part"]

Message = dict[str, Any]
"""One OpenAI chat message: ``{"role": ..., "content": str | list[content part]}``."""


# ------------------------------------------------------------------------------------------------- messages


def _is_single_image(x: Any) -> bool:
    return isinstance(x, (np.ndarray, Image.Image, str, bytes, bytearray, os.PathLike))


def build_messages(
    prompt: str,
    images: Sequence[ImageLike] | ImageLike = (),
    system: str | None = None,
    image_quality: int = 90,
    max_side: int | None = None,
    images_first: bool = False,
) -> list[Message]:
    """Build OpenAI chat messages: an optional system message and one user message with text and images.

    Static text goes before the images by default, so a server's prefix cache (vLLM) can reuse it across
    frames; pass ``images_first=True`` for models prompted image-first.

    Args:
        prompt: the user text (may be empty when images are given).
        images: images in order (a single image is accepted too); see :func:`image_part`.
        system: optional system prompt.
        image_quality: JPEG quality of the images.
        max_side: optional downscale bound on each image's longest side, in pixels.
        images_first: put the images before the text in the user message.

    Returns:
        The message list (:meth:`dppo_embodied.conversation.Conversation.openai_messages` of that conversation:
        each content a list of parts).

    Raises:
        MediaError: an image cannot be read or encoded.
    """
    imgs = [images] if _is_single_image(images) else list(images)  # type: ignore[arg-type]
    conversation = Conversation(prompt, tuple(imgs), system=system or None, media_first=images_first)
    return conversation.openai_messages(image_quality=image_quality, max_side=max_side)
