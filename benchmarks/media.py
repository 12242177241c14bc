"""Decoding a doc's media for the model: images and uniformly sampled video frames (PIL RGB).

Frame sampling (:func:`frame_indices`) follows lmms-eval's default video reader: ``N`` indices evenly spaced over
the clip, first and last frame included (``np.linspace(first, last, N)`` truncated to integers), where the clip is
restricted to ``[start, end]`` seconds when the sample has bounds (``fps`` from the container, or from the
sample for frame folders). A clip with fewer frames than ``N`` gives all its frames. A video may be a file (decoded
with OpenCV) or a folder of frame images (sorted by name). Images and frame files are opened by the one core
opener, :func:`dppo_embodied.images.load_image`, which refuses images over
:data:`~dppo_embodied.images.MAX_IMAGE_PIXELS` before decoding; video files are held to the same budget per frame.
Every failure raises :class:`~dppo_embodied.errors.MediaError` naming the file; the runner records the sample as
failed.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.doc import Doc
from dppo_embodied.errors import MediaError
from dppo_embodied.images import check_pixels, load_image
from dppo_embodied.types import VideoRef

_FRAME_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
DEFAULT_FRAME_FOLDER_FPS = 3.0


def frame_indices(total: int, n: int, fps: float | None = None, start: float | None = None,
                  end: float | None = None) -> list[int]:
    """Indices of ``n`` frames sampled uniformly from ``[start, end]`` seconds of a ``total``-frame clip.

    Args:
        total: number of frames in the file.
        n: frames wanted (>= 1).
        fps: frames per second (needed only with bounds).
        start: clip start in seconds, or None (first frame).
        end: clip end in seconds, or None (last frame).

    Returns:
        Sorted frame indices (fewer than ``n`` when the clip is shorter).
    """
    if total <= 0:
        return []
    first, last = 0, total - 1
    if fps and fps > 0:
        if start is not None and math.isfinite(start):
            first = min(last, max(0, round(start * fps)))
        if end is not None and math.isfinite(end):
            last = max(first, min(last, round(end * fps)))
    count = last - first + 1
    if count <= n:
        return list(range(first, last + 1))
    return [int(i) for i in np.linspace(first, last, n, dtype=int)]


def _frames_from_folder(folder: Path, video: VideoRef, n: int) -> list[Any]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in _FRAME_EXTS)
    if not files:
        raise MediaError(f"video frame folder {folder} has no frame images ({', '.join(_FRAME_EXTS)})")
    fps = video.fps or DEFAULT_FRAME_FOLDER_FPS
    return [load_image(files[i]) for i in frame_indices(len(files), n, fps, video.start, video.end)]


def _frames_from_file(path: Path, video: VideoRef, n: int) -> list[Any]:
    import cv2
    from PIL import Image

    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise MediaError(f"cannot open video {path} (missing, corrupt or unsupported codec)")
        check_pixels((int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)),
                     f"frames of video {str(path)!r}")
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0) or (video.fps or 0)
        frames: list[Any] = []
        if total > 0:
            for idx in frame_indices(total, n, fps, video.start, video.end):
                cap.set(cv2.CAP_PROP_POS_FRAMES, idx)
                ok, frame = cap.read()
                if ok and frame is not None:
                    frames.append(Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)))
        if not frames:  # unknown frame count or seeking failed: decode sequentially
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            allf = []
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                allf.append(frame)
            idxs = frame_indices(len(allf), n, fps, video.start, video.end)
            frames = [Image.fromarray(cv2.cvtColor(allf[i], cv2.COLOR_BGR2RGB)) for i in idxs]
        if not frames:
            raise MediaError(f"video {path} has no decodable frames")
        return frames
    finally:
        cap.release()


def sample_frames(video: VideoRef, n: int) -> list[Any]:
    """``n`` uniformly sampled RGB frames of a video file or frame folder (see the module docstring)."""
    if n < 1:
        raise MediaError(f"number of frames must be >= 1, got {n}")
    path = Path(video.path)
    if path.is_dir():
        return _frames_from_folder(path, video, n)
    if not path.is_file():
        raise MediaError(f"video {path} does not exist")
    return _frames_from_file(path, video, n)


def load_media(doc: Doc, frames: int) -> list[Any]:
    """All images shown with a doc, in order: the sampled video frames first, then the images."""
    out = sample_frames(doc.video, frames) if doc.video is not None else []
    out.extend(load_image(ref) for ref in doc.images)
    return out
