"""A sample's media, loaded once for every path: training rows, rollouts, the teacher, ``dppo eval`` and the bridge.

* Images go through the one image opener, :func:`dppo_embodied.images.load_image` (pixel budget checked from the
  header, decompression-bomb guard, errors naming the file).
* Videos are decoded by one decoder, PyAV (the ``av`` package, FFmpeg's libraries; extra ``video``, included in
  ``eval``, ``train`` and ``bridge``), for files; a folder of frame images (sorted by name) works as a video too.
* One frame sampler, :func:`frame_indices`: lmms-eval's default video reader rule, ``N`` indices evenly spaced over
  the clip, first and last frame included (``np.linspace(first, last, N)`` truncated to integers), where the clip
  is restricted to ``[start, end]`` seconds when the sample has bounds (``fps`` from the container, else from the
  sample; frame folders use the sample's ``fps``, default :data:`DEFAULT_FRAME_FOLDER_FPS`). A clip with fewer
  frames than ``N`` gives all its frames.
* The number of frames is a parameter: the official evaluation samples :data:`DEFAULT_FRAMES` (32), a training
  recipe may set fewer (``data.frames``), and the metaloop's held-out evaluation uses the recipe's value.
* Videos are encoded by one writer, :func:`write_h264` (H.264 in MP4, ``yuv420p``: plays in browsers; LeRobot
  datasets and the closed-loop episode videos of ``dppo eval run --save-videos``).
* **One order** for every path: the sampled video frames first (in time order), then the sample's images (in their
  listed order), the order the official evaluations show visuals in.

Every failure raises :class:`~dppo_embodied.errors.MediaError` naming the file. Torch-free.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from dppo_embodied.errors import MediaError
from dppo_embodied.images import MAX_IMAGE_PIXELS, check_pixels, load_image
from dppo_embodied.imports import require
from dppo_embodied.types import VideoRef

__all__ = ["DEFAULT_FRAMES", "DEFAULT_FRAME_FOLDER_FPS", "HasMedia", "MediaLoader", "VideoStream", "decode_frames",
           "frame_indices", "load_media", "sample_frames", "write_h264"]

DEFAULT_FRAMES = 32
"""Frames sampled per clip by the official evaluations (``dppo eval --frames``)."""

DEFAULT_FRAME_FOLDER_FPS = 3.0
"""Frame rate assumed for a folder of frame images whose sample gives none (only used with ``start``/``end``)."""

FRAME_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


class HasMedia(Protocol):
    """What the loader reads from a sample: :class:`~dppo_embodied.types.EmbodiedSample` and a benchmark doc."""

    @property
    def images(self) -> Sequence[Any]:
        """Image references (paths, encoded bytes or decoded images), in order."""
        ...

    @property
    def video(self) -> VideoRef | None:
        """An optional video clip."""
        ...


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


# ------------------------------------------------------------------------------------------------- decoding
def _av() -> Any:
    return require("av", extra="video")


def write_h264(path: str | os.PathLike[str], frames: Sequence[np.ndarray], fps: float | Fraction) -> Path:
    """Encode ``frames`` (``(H, W, 3)`` uint8, one size, even sides) as H.264 in MP4 (yuv420p, every other frame a
    keyframe, CRF 18) with frame ``i`` at ``i / fps`` s; written to a temporary file, then renamed into place.
    ``fps`` may be fractional (a clip of n frames over d seconds: (n - 1) / d); the file's timestamps keep it.

    Raises:
        MediaError: no frames, or frames of another shape.
        DependencyNotInstalled: ``av`` is missing (extra ``video``).
    """
    path = Path(path)
    if not frames:
        raise MediaError(f"{path}: no frames to encode")
    h, w = frames[0].shape[:2]
    if any(f.shape != (h, w, 3) for f in frames) or h % 2 or w % 2:
        raise MediaError(f"{path}: frames must share one (H, W, 3) shape with even H and W (yuv420p); first is "
                         f"{frames[0].shape}")
    rate = Fraction(fps).limit_denominator(1001)
    if rate <= 0:
        raise MediaError(f"{path}: fps must be > 0, got {fps!r}")
    av = _av()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with av.open(str(tmp), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.time_base = 1 / rate
        stream.codec_context.gop_size = 2
        stream.codec_context.max_b_frames = 0
        stream.options = {"crf": "18", "preset": "veryfast"}
        for i, img in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img, dtype=np.uint8), format="rgb24")
            frame.pts = i
            frame.time_base = 1 / rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.replace(path)
    return path


def _open_container(path: Path) -> Any:
    """A PyAV container of a video file with its first video stream, or :class:`MediaError` naming the file."""
    av = _av()
    if not path.is_file():
        raise MediaError(f"video {path} does not exist")
    try:
        container = av.open(str(path))
    except Exception as e:  # av.error.InvalidDataError, OSError, ... on a corrupt or unsupported file
        raise MediaError(f"cannot open video {path} (corrupt or unsupported codec: {type(e).__name__}: {e})") from e
    if not container.streams.video:
        container.close()
        raise MediaError(f"video {path} has no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return container


def _stream_fps(stream: Any) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 0.0


def _decode(path: Path, wanted: Sequence[int] | None, fps: float | None = None, start_s: float = 0.0
            ) -> tuple[dict[int, Image.Image], int]:
    """Decode ``path`` sequentially (the one decode loop): the RGB frames at the ``wanted`` indices, by index in
    decode order (all with ``None``: none kept, only counted), and the number of frames decoded (the whole file
    unless the last wanted index came first).

    With ``fps``, a frame's index is its timestamp instead: ``round(pts_seconds * fps) - round(start_s * fps)``
    (a LeRobot video file holds several episodes one after another; frames before ``start_s`` get negative
    indices and are skipped)."""
    keep = set(wanted or ())
    stop = max(keep) if keep else -1
    first = round(start_s * fps) if fps else 0
    frames: dict[int, Image.Image] = {}
    container = _open_container(path)
    count = 0
    try:
        stream = container.streams.video[0]
        for n, frame in enumerate(container.decode(stream)):
            count = n + 1
            i = n if not fps or frame.pts is None else round(float(frame.pts * frame.time_base) * fps) - first
            if i in keep and i not in frames:
                frames[i] = frame.to_image()
            if wanted is not None and i >= stop:
                break
    except MediaError:
        raise
    except Exception as e:  # a corrupt packet mid-stream
        raise MediaError(f"video {path} does not decode after frame {count} ({type(e).__name__}: {e})") from e
    finally:
        container.close()
    return frames, count


def _frames_from_file(path: Path, video: VideoRef, n: int, max_pixels: int | None) -> list[Image.Image]:
    container = _open_container(path)
    try:
        stream = container.streams.video[0]
        check_pixels((int(stream.codec_context.width or 0), int(stream.codec_context.height or 0)),
                     f"frames of video {str(path)!r}", max_pixels)
        fps = _stream_fps(stream) or (video.fps or 0.0)
        total = int(stream.frames or 0)
    finally:
        container.close()
    if total <= 0:  # the container does not say: count the frames once
        total = _decode(path, None)[1]
    wanted = frame_indices(total, n, fps, video.start, video.end)
    got, count = _decode(path, wanted)
    if len(got) < len(wanted) and count < total:  # the header promised more frames than the file holds
        got, _ = _decode(path, frame_indices(count, n, fps, video.start, video.end))
    if not got:
        raise MediaError(f"video {path} has no decodable frames")
    return list(got.values())


def decode_frames(path: str | os.PathLike[str], indices: Sequence[int], fps: float, start_s: float = 0.0
                  ) -> np.ndarray:
    """Frames of a video file picked by timestamp, with the one PyAV decode loop (the LeRobot dataset reader).

    Args:
        path: the video file.
        indices: frame indices counted from ``start_s`` (``round(t * fps) - round(start_s * fps)``), any order,
            repeats allowed.
        fps: frames per second that turns timestamps into indices.
        start_s: the timestamp of index 0 in the file, seconds.

    Returns:
        ``(len(indices), H, W, 3)`` uint8 RGB frames in the order of ``indices``.

    Raises:
        MediaError: the file is missing, does not decode, or lacks a wanted frame (the message names them).
    """
    got, _ = _decode(Path(path), list(indices), fps=fps, start_s=start_s)
    missing = sorted(set(indices) - set(got))
    if missing:
        raise MediaError(f"video {path}: no frames at indices {missing} (from {start_s:g} s at {fps:g} fps)")
    return np.stack([np.asarray(got[i].convert("RGB")) for i in indices])


def _frames_from_folder(folder: Path, video: VideoRef, n: int, max_pixels: int | None) -> list[Image.Image]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in FRAME_EXTS)
    if not files:
        raise MediaError(f"video frame folder {folder} has no frame images ({', '.join(FRAME_EXTS)})")
    fps = video.fps or DEFAULT_FRAME_FOLDER_FPS
    return [load_image(files[i], max_pixels=max_pixels)
            for i in frame_indices(len(files), n, fps, video.start, video.end)]


def sample_frames(video: VideoRef, n: int = DEFAULT_FRAMES, max_pixels: int | None = MAX_IMAGE_PIXELS
                  ) -> list[Image.Image]:
    """``n`` uniformly sampled RGB frames of a video file or frame folder, in time order (module docstring).

    Args:
        video: the clip (path, optional ``start``/``end`` seconds and ``fps``).
        n: frames wanted (>= 1).
        max_pixels: refuse frames with more pixels than this (checked once from the stream header).

    Raises:
        MediaError: missing, corrupt or oversized video (naming the file); ``DependencyNotInstalled`` without
            PyAV (extra ``video``).
    """
    if n < 1:
        raise MediaError(f"number of frames must be >= 1, got {n}")
    path = Path(video.path)
    if path.is_dir():
        return _frames_from_folder(path, video, n, max_pixels)
    return _frames_from_file(path, video, n, max_pixels)


class VideoStream:
    """A video file's frames in order, decoded by the same decoder (the bridge's video-file camera).

    Args:
        path: the video file.

    Attributes:
        fps: the container's frame rate (0 when unknown).
        size: ``(width, height)`` of the frames.

    Raises:
        MediaError: missing, corrupt or oversized file.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._container: Any = None
        self._frames: Iterator[Any] | None = None
        self._open()

    def _open(self) -> None:
        self.close()
        self._container = _open_container(self.path)
        stream = self._container.streams.video[0]
        self.fps = _stream_fps(stream)
        self.size = (int(stream.codec_context.width or 0), int(stream.codec_context.height or 0))
        check_pixels(self.size, f"frames of video {str(self.path)!r}")
        self._frames = self._container.decode(stream)

    def read(self) -> np.ndarray | None:
        """The next frame as an ``(H, W, 3)`` uint8 RGB array, or ``None`` at the end of the file.

        Raises:
            MediaError: a corrupt packet.
        """
        if self._frames is None:
            raise MediaError(f"video {self.path} is closed")
        try:
            frame = next(self._frames, None)
        except Exception as e:
            raise MediaError(f"video {self.path} does not decode ({type(e).__name__}: {e})") from e
        return None if frame is None else frame.to_ndarray(format="rgb24")

    def rewind(self) -> None:
        """Start again from the first frame."""
        self._open()

    def close(self) -> None:
        """Release the file. Idempotent."""
        if self._container is not None:
            self._container.close()
        self._container, self._frames = None, None


# -------------------------------------------------------------------------------------------------- loading
def load_media(sample: HasMedia, frames: int = DEFAULT_FRAMES, open_image: Any = None) -> list[Image.Image]:
    """Every image shown with a sample, in the one order: the sampled video frames first, then the images.

    Args:
        sample: an :class:`~dppo_embodied.types.EmbodiedSample`, a benchmark doc, anything :class:`HasMedia`.
        frames: frames sampled from the video (the official evaluations: :data:`DEFAULT_FRAMES`).
        open_image: the image opener (default :func:`~dppo_embodied.images.load_image`; :class:`MediaLoader`
            passes its cached one).

    Returns:
        RGB PIL images.

    Raises:
        MediaError: naming the missing, corrupt or oversized file.
    """
    opener = open_image or load_image
    out = sample_frames(sample.video, frames) if sample.video is not None else []
    out.extend(opener(ref) for ref in sample.images)
    return out


class MediaLoader:
    """:func:`load_media` with a frame count and a small LRU cache of decoded image files (training reads the same
    images in every rollout, row and evaluation).

    Args:
        frames: frames sampled per video clip.
        cache_size: image files kept decoded in memory (0: no cache); keyed on path and modification time.
    """

    def __init__(self, frames: int = DEFAULT_FRAMES, cache_size: int = 4096) -> None:
        if frames < 1:
            raise MediaError(f"number of frames must be >= 1, got {frames}")
        self.frames, self.cache_size = frames, cache_size
        self._cache: OrderedDict[tuple[str, int], Image.Image] = OrderedDict()

    def _image(self, ref: Any) -> Image.Image:
        if not self.cache_size or not isinstance(ref, (str, os.PathLike)):
            return load_image(ref)
        try:
            key = (str(ref), os.stat(ref).st_mtime_ns)
        except OSError:
            return load_image(ref)  # raises the MediaError naming the file
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        img = load_image(ref)
        self._cache[key] = img
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return img

    def load(self, sample: HasMedia) -> list[Image.Image]:
        """Every image of ``sample`` (video frames first), see :func:`load_media`."""
        return load_media(sample, self.frames, self._image)
