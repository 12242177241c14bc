"""Region masks of the pointing benchmarks: one decoder for files, bytes, PIL images and arrays, with a cache.

A mask is a read-only ``(H, W)`` uint8 array, 0 outside and 255 inside (soft values in between count
proportionally in :func:`dppo_embodied.metrics.points_in_mask`). Image masks are opened by the one image opener,
:func:`dppo_embodied.images.load_image` (pixel budget, bomb guard), in their own mode.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

import numpy as np

from dppo_embodied.errors import MediaError
from dppo_embodied.images import load_image


def _mask_from_image(im: Any) -> np.ndarray:
    """``(H, W)`` uint8 from a PIL image: palette/LA images to luminance, RGB(A) -> first channel (as the
    official scorers index ``np.array(mask)[..., 0]``), 1-bit -> 0/255."""
    if im.mode in ("P", "PA", "LA"):
        im = im.convert("L")
    arr = np.asarray(im)
    if arr.ndim == 3:
        arr = arr[..., 0]
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return arr


def decode_mask(data: Any) -> np.ndarray:
    """A read-only ``(H, W)`` uint8 mask from encoded bytes, a PIL image or an array (see :func:`load_mask`).

    Raises:
        MediaError: the data is not a readable image.
    """
    if isinstance(data, np.ndarray):
        arr = data[..., 0] if data.ndim == 3 else data
        arr = arr.astype(np.uint8) * 255 if arr.dtype == bool else arr.astype(np.uint8, copy=False)
    elif isinstance(data, (bytes, bytearray)):
        arr = _mask_from_image(load_image(bytes(data), mode=None))
    elif hasattr(data, "mode") and hasattr(data, "size"):
        arr = _mask_from_image(data)
    else:
        raise MediaError(f"unsupported mask of type {type(data).__name__}")
    if arr.ndim != 2:
        raise MediaError(f"mask has shape {arr.shape}; expected (H, W)")
    arr = np.ascontiguousarray(arr)
    arr.setflags(write=False)
    return arr


@lru_cache(maxsize=512)
def _load_mask_cached(path: str, mtime_ns: int) -> np.ndarray:
    if path.endswith(".npy"):
        try:
            return decode_mask(np.load(path, allow_pickle=False))
        except (OSError, ValueError) as e:
            raise MediaError(f"cannot read mask {path}: {e}; expected a 2-D array (0 outside, 255 inside)") from e
    try:
        return decode_mask(_mask_from_image(load_image(path, mode=None)))
    except MediaError as e:
        raise MediaError(f"cannot read mask {path}: {e}; expected a grayscale image (0 outside, 255 inside)") from e


def load_mask(path: str | os.PathLike[str]) -> np.ndarray:
    """Load a mask image (PNG/JPEG, or ``.npy``) as a read-only ``(H, W)`` uint8 array, cached (LRU, 512).

    RGB(A) masks give their first channel (the official scorers' rule); palette masks are converted to
    luminance; boolean masks become 0/255. The cache is keyed on the path
    and its modification time, so an edited file is re-read.

    Raises:
        MediaError: the file is missing or unreadable; the message names the path.
    """
    p = str(path)
    try:
        mtime = os.stat(p).st_mtime_ns
    except OSError as e:
        raise MediaError(f"mask {p} does not exist or cannot be read: {e}") from e
    return _load_mask_cached(p, mtime)
