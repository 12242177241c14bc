"""Bounded decoding of the inline images of ``dppo serve`` requests.

The images of a request pass three budgets before any of them is decoded, all read from the image headers (Pillow
parses only the header in :func:`PIL.Image.open`; the pixels are decoded by ``convert``):

* a format allowlist (PNG, JPEG, WebP, GIF, BMP): no TIFF/EPS/... decoders are reachable from the network;
* ``max_image_pixels`` per image (width x height once decoded): above it the request gets 413, so a small
  compressed file that inflates to gigabytes (a decompression bomb) costs nothing;
* ``max_request_pixels`` for all the images of a request together (413).

A decoded image larger than ``keep_pixels`` (the model processor's own ``max_pixels``) is downscaled right away,
JPEGs by decoding at 1/2, 1/4 or 1/8 scale, so queued requests hold at most what the model will look at.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

from PIL import Image

ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")
"""Pillow formats a request image may use."""


class ImageRefused(ValueError):
    """An image over a budget (``status`` 413) or not a decodable image of an allowed format (400)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


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
            with _open(raw) as im:
                w, h = im.size
            if w * h > self.max_image_pixels:
                raise ImageRefused(
                    f"image of {w}x{h} = {w * h:,} pixels exceeds the limit of {self.max_image_pixels:,} pixels per "
                    "image; downscale it (e.g. build_messages(..., max_side=448))", status=413)
            total += w * h
            if total > self.max_request_pixels:
                raise ImageRefused(
                    f"the images of this request total {total:,} pixels or more, over the limit of "
                    f"{self.max_request_pixels:,} pixels per request; send fewer or smaller images", status=413)
        return [self._decode(raw) for raw in raws]

    def decode(self, raw: bytes) -> Image.Image:
        """Decode one encoded image within the budgets (see :meth:`decode_all`)."""
        return self.decode_all([raw])[0]

    def _decode(self, raw: bytes) -> Image.Image:
        with _open(raw) as im:
            target = _fit(*im.size, self.keep_pixels)
            try:
                if target != im.size and im.format == "JPEG":
                    im.draft("RGB", target)  # decode at a reduced scale (never below target)
                rgb = im.convert("RGB")
            except Image.DecompressionBombError as e:
                raise ImageRefused(f"image refused as a decompression bomb ({e})", status=413) from None
            except (OSError, ValueError, SyntaxError, EOFError) as e:
                raise ImageRefused(f"image data URL does not decode ({type(e).__name__}: {e})") from None
        if rgb.size != target:
            rgb = rgb.resize(target, Image.Resampling.BICUBIC, reducing_gap=3.0)
        return rgb


def _open(raw: bytes) -> Image.Image:
    """Open encoded bytes lazily (the header only) with the allowed formats."""
    try:
        return Image.open(io.BytesIO(raw), formats=ALLOWED_FORMATS)
    except Image.DecompressionBombError as e:  # Pillow's own process-wide guard, should ours ever be laxer
        raise ImageRefused(f"image refused as a decompression bomb ({e})", status=413) from None
    except (OSError, ValueError, SyntaxError) as e:
        raise ImageRefused(f"image data URL does not decode as an image of {'/'.join(ALLOWED_FORMATS)} "
                           f"({type(e).__name__}: {e})") from None


def _fit(w: int, h: int, keep_pixels: int | None) -> tuple[int, int]:
    """``(w, h)`` scaled down (aspect kept) to at most ``keep_pixels`` pixels; unchanged when it already fits."""
    if keep_pixels is None or w * h <= keep_pixels:
        return w, h
    s = math.sqrt(keep_pixels / (w * h))
    return max(1, math.floor(w * s)), max(1, math.floor(h * s))
