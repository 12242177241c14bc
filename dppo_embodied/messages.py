"""OpenAI chat messages with images as base64 JPEG data URLs: :func:`build_messages`, :func:`image_part`.

Torch-free. Re-exported by :mod:`dppo_embodied.client`, the usual import path.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from dppo_embodied.images import ImageLike, to_data_url

__all__ = ["Message", "build_messages", "image_part"]

Message = dict[str, Any]
"""One OpenAI chat message: ``{"role": ..., "content": str | list[content part]}``."""


# ------------------------------------------------------------------------------------------------- messages


def _is_single_image(x: Any) -> bool:
    return isinstance(x, (np.ndarray, Image.Image, str, bytes, bytearray, os.PathLike))


def image_part(image: ImageLike, quality: int = 90, max_side: int | None = None) -> dict[str, Any]:
    """One OpenAI ``image_url`` content part holding ``image`` as a base64 JPEG data URL.

    Args:
        image: anything :func:`dppo_embodied.images.encode_image` accepts, or a ready ``data:image/...`` URL
            (passed through unchanged).
        quality: JPEG quality.
        max_side: optional downscale bound on the longest side, in pixels.

    Returns:
        ``{"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,..."}}``.

    Raises:
        MediaError: the image cannot be read or encoded (remote ``http(s)`` URLs are refused).
    """
    if isinstance(image, str) and image.startswith("data:image/"):
        url = image
    else:
        url = to_data_url(image, quality=quality, max_side=max_side)
    return {"type": "image_url", "image_url": {"url": url}}


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
        The message list. Without images the user content is a plain string.

    Raises:
        MediaError: an image cannot be read or encoded.
    """
    messages: list[Message] = []
    if system:
        messages.append({"role": "system", "content": system})
    imgs = [images] if _is_single_image(images) else list(images)  # type: ignore[arg-type]
    if not imgs:
        messages.append({"role": "user", "content": prompt})
        return messages
    img_parts = [image_part(im, quality=image_quality, max_side=max_side) for im in imgs]
    text_parts = [{"type": "text", "text": prompt}] if prompt else []
    content = img_parts + text_parts if images_first else text_parts + img_parts
    messages.append({"role": "user", "content": content})
    return messages
