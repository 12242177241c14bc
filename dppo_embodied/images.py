"""Image encoding for model requests: arrays, PIL images, files or encoded bytes → JPEG/PNG bytes → data URLs.

Fast path: OpenCV when it is importable (optional; the ``eval``/``bridge`` extras install it), else Pillow.
Both produce standard baseline JPEGs, so the server cannot tell them apart. Remote ``http(s)://`` URLs are
refused on purpose (latency, SSRF; see docs): download the image and pass the file or the array instead.

Accepted image inputs (``ImageLike``):

* ``numpy.ndarray`` of dtype ``uint8``: ``(H, W, 3)`` RGB, ``(H, W)`` or ``(H, W, 1)`` grey, ``(H, W, 4)`` RGBA
  (alpha dropped);
* ``PIL.Image.Image`` of any mode (converted to RGB, or kept grey);
* a path (``str`` or ``os.PathLike``) to an image file;
* already encoded ``bytes`` (JPEG/PNG/...): passed through unchanged when no conversion is needed.
"""

from __future__ import annotations

import base64
import io
import logging
import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from dppo_embodied.errors import MediaError

logger = logging.getLogger(__name__)

ImageLike = np.ndarray | Image.Image | str | os.PathLike | bytes
"""Anything :func:`encode_image` accepts."""

_FORMATS = {"jpeg": "jpeg", "jpg": "jpeg", "png": "png"}
_MIME = {"jpeg": "image/jpeg", "png": "image/png"}

_cv2: Any = None
_cv2_checked = False


def _get_cv2() -> Any:
    """Return the ``cv2`` module when it imports cleanly, else ``None`` (checked once, never raises)."""
    global _cv2, _cv2_checked
    if not _cv2_checked:
        _cv2_checked = True
        if os.environ.get("DPPO_NO_CV2", "") not in ("", "0"):
            return None
        try:
            import cv2  # optional fast path

            _cv2 = cv2
        except Exception as e:  # ImportError, or a broken libGL raising at import time
            logger.debug("cv2 unavailable (%s); encoding images with Pillow", e)
            _cv2 = None
    return _cv2


def _norm_format(fmt: str) -> str:
    try:
        return _FORMATS[fmt.lower()]
    except KeyError:
        raise MediaError(f"unsupported image format {fmt!r}; use 'jpeg' or 'png'") from None


def _sniff(data: bytes) -> str | None:
    """Container format of encoded image bytes, from the magic number (``None`` when unknown)."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    return None


#: The largest image (width x height) any opener here decodes: Pillow's default ``Image.MAX_IMAGE_PIXELS``
#: (89,478,485 pixels, about 9459 x 9459, 0.25 GB as RGB). Checked from the header, before decoding, whatever the
#: process-wide Pillow setting is; larger images raise :class:`MediaError` (a decompression bomb such as a 109 kB
#: 30000 x 30000 PNG costs nothing to refuse).
MAX_IMAGE_PIXELS = 89_478_485


def _describe(source: object) -> str:
    if isinstance(source, (str, os.PathLike)):
        return repr(str(source))
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes>"
    return f"<{type(source).__name__}>"


class ImageTooLarge(MediaError):
    """An image over a pixel budget, or refused as a decompression bomb (``dppo serve`` answers 413)."""


def check_pixels(size: tuple[int, int], what: str, max_pixels: int | None = MAX_IMAGE_PIXELS) -> None:
    """Raise :class:`ImageTooLarge` when a ``(width, height)`` is over the pixel budget (``None``: no budget)."""
    w, h = size
    if max_pixels is not None and w * h > max_pixels:
        raise ImageTooLarge(f"image {what} is {w} x {h} = {w * h:,} pixels, over the limit of {max_pixels:,} "
                            "(a decompression bomb or an oversized image); downscale it below the limit")


@contextmanager
def _opened(image: str | os.PathLike | bytes, max_pixels: int | None,
            formats: Sequence[str] | None = None) -> Iterator[Image.Image]:
    """Open an image file or encoded bytes lazily (the header only), check the pixel budget from the header, and
    turn every failure of the body (decoding happens there) into a :class:`MediaError` naming the source."""
    what = _describe(image)
    source: Any = Path(image) if isinstance(image, (str, os.PathLike)) else io.BytesIO(bytes(image))
    try:
        with Image.open(source, formats=list(formats) if formats else None) as im:
            check_pixels(im.size, what, max_pixels)
            yield im
    except MediaError:
        raise
    except FileNotFoundError:
        where = "" if os.path.isabs(str(image)) else f" (relative to {os.getcwd()!r})"
        raise MediaError(f"image file {what} does not exist{where}; check the path") from None
    except Image.DecompressionBombError as e:  # over Pillow's process-wide limit (2 x Image.MAX_IMAGE_PIXELS)
        raise ImageTooLarge(f"image {what} refused as a decompression bomb ({e}); downscale it below "
                            f"{max_pixels or MAX_IMAGE_PIXELS:,} pixels") from e
    except Exception as e:  # Pillow raises OSError, SyntaxError, ValueError, EOFError, struct.error, ... on bad data
        kinds = "/".join(formats) if formats else "JPEG/PNG"
        raise MediaError(f"cannot read image {what}: {type(e).__name__}: {e}; is it a valid {kinds} file?") from e


def image_size(image: str | os.PathLike | bytes, formats: Sequence[str] | None = None) -> tuple[int, int]:
    """``(width, height)`` of an image file or encoded bytes, read from the header (nothing is decoded).

    Args:
        image: a path or encoded bytes.
        formats: Pillow format names allowed (``None``: any); other formats raise :class:`MediaError`.

    Raises:
        MediaError: not an image (of an allowed format); :class:`ImageTooLarge` over Pillow's bomb limit.
    """
    with _opened(image, None, formats) as im:
        return im.size


def fit_pixels(size: tuple[int, int], keep_pixels: int | None) -> tuple[int, int]:
    """``(w, h)`` scaled down (aspect kept) to at most ``keep_pixels`` pixels; unchanged when it already fits."""
    w, h = size
    if keep_pixels is None or w * h <= keep_pixels:
        return w, h
    s = math.sqrt(keep_pixels / (w * h))
    return max(1, math.floor(w * s)), max(1, math.floor(h * s))


def _fitted(im: Image.Image, keep_pixels: int | None) -> Image.Image:
    target = fit_pixels(im.size, keep_pixels)
    return im if target == im.size else im.resize(target, Image.Resampling.BICUBIC, reducing_gap=3.0)


def load_image(image: ImageLike, mode: str | None = "RGB", max_pixels: int | None = MAX_IMAGE_PIXELS, *,
               formats: Sequence[str] | None = None, keep_pixels: int | None = None) -> Image.Image:
    """The one image opener: a fully decoded :class:`PIL.Image.Image` in ``mode`` from any image input.

    Every place that decodes an image for a model (sample and benchmark media, masks, cameras, the local policy,
    ``dppo serve`` requests, encoding) goes through here, so the pixel budget and the error handling live in one
    place.

    Args:
        image: a path, encoded bytes, a PIL image or a uint8 array (see ``ImageLike``); remote URLs are refused.
        mode: the Pillow mode of the result (``"RGB"``, ``"L"`` for masks, ...); ``None`` keeps the decoded mode.
        max_pixels: refuse images with more pixels than this, before decoding (``None``: no budget).
        formats: Pillow format names a file or bytes may use (``None``: any Pillow reads); ``dppo serve`` allows
            only PNG, JPEG, WebP, GIF and BMP from the network.
        keep_pixels: downscale (aspect kept) to at most this many pixels right after decoding; JPEGs are decoded
            at 1/2, 1/4 or 1/8 scale when that is enough (``None``: full size).

    Returns:
        The decoded image (file closed).

    Raises:
        MediaError: missing file, not an image (of an allowed format), truncated or corrupt data; the message
            names the file (or the byte count). :class:`ImageTooLarge` (a ``MediaError``): over the pixel budget
            or over Pillow's decompression-bomb limit.
    """
    if isinstance(image, str) and image.startswith(("http://", "https://")):
        raise MediaError(f"remote image URLs are not fetched ({image[:80]!r}); download the image and pass its path "
                         "or array")
    if isinstance(image, str) and image.startswith("data:"):
        raise MediaError("got a data URL where an image was expected; pass it to build_messages unchanged instead")
    if isinstance(image, np.ndarray):
        im = Image.fromarray(_to_array(image))
        return _fitted(im.convert(mode) if mode else im, keep_pixels)
    if isinstance(image, Image.Image):
        check_pixels(image.size, _describe(image), max_pixels)
        return _fitted(image.convert(mode) if mode else image.copy(), keep_pixels)
    if not isinstance(image, (str, os.PathLike, bytes, bytearray, memoryview)):
        raise MediaError(f"unsupported image type {type(image).__name__}; pass a uint8 numpy array, a PIL image, a "
                         "path or bytes")
    with _opened(image, max_pixels, formats) as im:
        target = fit_pixels(im.size, keep_pixels)
        if target != im.size and im.format == "JPEG":
            im.draft("RGB", target)  # decode at a reduced scale (never below the target)
        if mode:
            out = im.convert(mode)
        else:
            im.load()
            out = im.copy()
    return _fitted(out, keep_pixels)


def _decode_bytes(data: bytes, max_side: int | None) -> Image.Image:
    """Encoded bytes as an RGB or grey image; JPEGs larger than ``max_side`` are decoded at a reduced scale, and
    the pixel budget applies to the decoded size."""
    with _opened(data, None) as im:
        if max_side is not None and max(im.size) > max_side:
            im.draft("RGB", (max_side, max_side))  # JPEG: decode at 1/2, 1/4 or 1/8 scale (fast)
        check_pixels(im.size, f"<{len(data)} bytes>")
        return im.convert("RGB") if im.mode not in ("RGB", "L") else im.copy()


def _to_array(image: ImageLike) -> np.ndarray:
    """Normalise any non-bytes input to a C-contiguous uint8 array, (H, W) grey or (H, W, 3) RGB."""
    if isinstance(image, (str, os.PathLike)):
        image = load_image(image)
    if isinstance(image, Image.Image):
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        return np.asarray(image)
    if isinstance(image, np.ndarray):
        arr = image
        if arr.dtype != np.uint8:
            raise MediaError(
                f"image array has dtype {arr.dtype}, expected uint8; convert floats in [0, 1] with "
                "(img * 255).clip(0, 255).astype(np.uint8)"
            )
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[:, :, 0]
        elif arr.ndim == 3 and arr.shape[2] == 4:
            arr = arr[:, :, :3]
        if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)) or arr.shape[0] == 0 or arr.shape[1] == 0:
            raise MediaError(
                f"image array has shape {image.shape}, expected (H, W, 3) RGB or (H, W) grey uint8 "
                "(channels last; transpose CHW arrays with img.transpose(1, 2, 0))"
            )
        return np.ascontiguousarray(arr)
    raise MediaError(
        f"unsupported image type {type(image).__name__}; pass a uint8 numpy array, a PIL image, a path or bytes"
    )


def _fit(h: int, w: int, max_side: int | None) -> tuple[int, int] | None:
    """Target (h, w) so the longest side is at most ``max_side`` (downscale only), or ``None`` to keep."""
    if max_side is None or max(h, w) <= max_side:
        return None
    scale = max_side / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def encode_image(image: ImageLike, fmt: str = "jpeg", quality: int = 90, max_side: int | None = None) -> bytes:
    """Encode an image as JPEG or PNG bytes, optionally downscaled so its longest side is ``max_side``.

    Args:
        image: a uint8 numpy array (``(H, W, 3)`` RGB or ``(H, W)`` grey), a PIL image, a file path, or
            encoded bytes. Encoded bytes already in ``fmt`` are returned unchanged when no resize is needed
            (``quality`` is then not applied).
        fmt: ``"jpeg"`` (default) or ``"png"``.
        quality: JPEG quality 1-95 (ignored for PNG). 80-90 is the sweet spot for VLM inputs.
        max_side: if set, downscale (never upscale) keeping the aspect ratio.

    Returns:
        The encoded bytes.

    Raises:
        MediaError: unreadable file (the message names the path), bad array shape/dtype, unsupported format.
    """
    fmt = _norm_format(fmt)
    if not 1 <= int(quality) <= 100:
        raise MediaError(f"JPEG quality must be in 1..100, got {quality}; 80-90 is typical")
    if max_side is not None and max_side < 1:
        raise MediaError(f"max_side must be a positive number of pixels or None, got {max_side}")
    if isinstance(image, (bytes, bytearray, memoryview)):
        data = bytes(image)
        if _sniff(data) == fmt and max_side is None:
            return data
        image = _decode_bytes(data, max_side)
    arr = _to_array(image)
    size = _fit(arr.shape[0], arr.shape[1], max_side)
    cv2 = _get_cv2()
    if cv2 is not None:
        try:
            if size is not None:
                arr = cv2.resize(arr, (size[1], size[0]), interpolation=cv2.INTER_AREA)
            bgr = arr if arr.ndim == 2 else cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
            if fmt == "jpeg":
                ok, buf = cv2.imencode(".jpg", bgr, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
            else:
                ok, buf = cv2.imencode(".png", bgr, [int(cv2.IMWRITE_PNG_COMPRESSION), 1])
            if ok:
                return buf.tobytes()
            logger.debug("cv2.imencode failed; falling back to Pillow")
        except Exception as e:  # a broken cv2 build must not break encoding
            logger.debug("cv2 encode error (%s); falling back to Pillow", e)
    pil = Image.fromarray(arr)
    if size is not None and pil.size != (size[1], size[0]):
        pil = pil.resize((size[1], size[0]), Image.Resampling.BILINEAR, reducing_gap=2.0)
    out = io.BytesIO()
    if fmt == "jpeg":
        pil.save(out, format="JPEG", quality=int(quality))
    else:
        pil.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def to_data_url(image: ImageLike, quality: int = 90, max_side: int | None = None, fmt: str = "jpeg") -> str:
    """Encode an image as a base64 data URL, e.g. ``"data:image/jpeg;base64,/9j/..."``.

    Args:
        image: see :func:`encode_image`.
        quality: JPEG quality.
        max_side: optional downscale bound on the longest side, in pixels.
        fmt: ``"jpeg"`` (default) or ``"png"``.

    Returns:
        The data URL string, ready for an OpenAI ``image_url`` content part.

    Raises:
        MediaError: see :func:`encode_image`.
    """
    fmt = _norm_format(fmt)
    data = encode_image(image, fmt=fmt, quality=quality, max_side=max_side)
    return f"data:{_MIME[fmt]};base64,{base64.b64encode(data).decode('ascii')}"


def decode_data_url(url: str) -> bytes:
    """Decode a ``data:<mime>;base64,<payload>`` URL back to bytes (handy in tests and fake servers).

    Args:
        url: the data URL.

    Returns:
        The decoded payload.

    Raises:
        MediaError: the string is not a base64 data URL.
    """
    head, sep, payload = url.partition(",")
    if not (sep and head.startswith("data:") and head.endswith(";base64")):
        raise MediaError(f"not a base64 data URL: {url[:40]!r}...")
    try:
        return base64.b64decode(payload, validate=True)
    except ValueError as e:
        raise MediaError(f"data URL payload is not valid base64: {e}") from e
