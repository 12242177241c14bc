"""The pixel budgets of ``dppo serve`` requests, checked from the image headers before anything is decoded.

Decoding itself is the one core opener, :func:`dppo_embodied.images.load_image` (format allowlist, pixel budget
from the header, decompression-bomb guard, downscaling right after decoding); this module adds what is particular
to a request that came over the network:

* a format allowlist (PNG, JPEG, WebP, GIF, BMP): no TIFF/EPS/... decoders are reachable from the network;
* ``max_image_pixels`` per image (width x height once decoded): above it the request gets 413, so a small
  compressed file that inflates to gigabytes (a decompression bomb) costs nothing;
* ``max_request_pixels`` for all the images of a request together (413), checked for every header before the
  first image is decoded.

A decoded image larger than ``keep_pixels`` (the model processor's own ``max_pixels``) is downscaled right away,
JPEGs by decoding at 1/2, 1/4 or 1/8 scale, so queued requests hold at most what the model will look at.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from dppo_embodied.errors import MediaError
from dppo_embodied.images import ImageTooLarge, image_size, load_image

ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")
"""Pillow formats a request image may use."""


class ImageRefused(ValueError):
    """An image over a budget (``status`` 413) or not a decodable image of an allowed format (400)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _refused(e: MediaError) -> ImageRefused:
    if isinstance(e, ImageTooLarge):
        return ImageRefused(str(e), status=413)
    return ImageRefused(f"image data URL does not decode as an image of {'/'.join(ALLOWED_FORMATS)} ({e})")


@dataclass(frozen=True)
class PixelBudget:
    """The pixel budgets of one request.

    Attributes:
        max_image_pixels: most pixels of one decoded image.
        max_request_pixels: most pixels of all the decoded images of the request (full sizes, before any
            downscaling).
        keep_pixels: images above this are downscaled to it after decoding (``None``: kept as sent).
    """

    max_image_pixels: int
    max_request_pixels: int
    keep_pixels: int | None = None

    def decode_all(self, raws: list[bytes]) -> list[Image.Image]:
        """Decode a request's encoded images into RGB images, after checking every header against the budgets
        (so a request over budget costs no decoding at all).

        Raises:
            ImageRefused: not an image of an allowed format, corrupt, or over a pixel budget.
        """
        total = 0
        for raw in raws:
            try:
                w, h = image_size(raw, ALLOWED_FORMATS)
            except MediaError as e:
                raise _refused(e) from None
            if w * h > self.max_image_pixels:
                raise ImageRefused(
                    f"image of {w}x{h} = {w * h:,} pixels exceeds the limit of {self.max_image_pixels:,} pixels per "
                    "image; downscale it (e.g. build_messages(..., max_side=448))", status=413)
            total += w * h
            if total > self.max_request_pixels:
                raise ImageRefused(
                    f"the images of this request total {total:,} pixels or more, over the limit of "
                    f"{self.max_request_pixels:,} pixels per request; send fewer or smaller images", status=413)
        try:
            return [load_image(raw, max_pixels=self.max_image_pixels, formats=ALLOWED_FORMATS,
                               keep_pixels=self.keep_pixels) for raw in raws]
        except MediaError as e:
            raise _refused(e) from None

    def decode(self, raw: bytes) -> Image.Image:
        """Decode one encoded image within the budgets (see :meth:`decode_all`)."""
        return self.decode_all([raw])[0]
