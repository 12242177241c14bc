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
import os
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


def load_image(path: str | os.PathLike) -> Image.Image:
    """Load an image file as an RGB :class:`PIL.Image.Image` (fully read, file closed).

    Args:
        path: image file path.

    Returns:
        The decoded image in mode ``"RGB"``.

    Raises:
        MediaError: the file is missing, unreadable or not an image; the message names the path.
    """
    p = Path(path)
    try:
        with Image.open(p) as im:
            return im.convert("RGB")
    except FileNotFoundError:
        raise MediaError(f"image file not found: {str(p)!r}; check the path (relative to {os.getcwd()!r})") from None
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise MediaError(f"cannot read image {str(p)!r}: {e}; is it a valid JPEG/PNG file?") from e


def _to_array(image: ImageLike) -> np.ndarray:
    """Normalise any non-bytes input to a C-contiguous uint8 array, (H, W) grey or (H, W, 3) RGB."""
    if isinstance(image, (str, os.PathLike)):
        if isinstance(image, str) and image.startswith(("http://", "https://")):
            raise MediaError(
                f"remote image URLs are not fetched ({image[:80]!r}); download the image and pass its path or array"
            )
        if isinstance(image, str) and image.startswith("data:"):
            raise MediaError("got a data URL where an image was expected; pass it to build_messages unchanged instead")
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
        try:
            with Image.open(io.BytesIO(data)) as im:
                if max_side is not None and max(im.size) > max_side:
                    im.draft("RGB", (max_side, max_side))  # JPEG: decode at a reduced scale (fast)
                image = im.convert("RGB") if im.mode not in ("RGB", "L") else im.copy()
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            raise MediaError(f"cannot decode {len(data)} image bytes: {e}") from e
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
