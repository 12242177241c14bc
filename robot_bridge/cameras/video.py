"""A video file played as a camera, in real time (frames paced at the file's frame rate), looping by default.

Useful to replay a recorded session through the bridge, or to feed a fixed scene to a real model in dry-run.
Files are decoded by the project's one video decoder (PyAV, :class:`dppo_embodied.media.VideoStream`); still images
(``.jpg``/``.png``) work too, through the one image opener, as a camera that repeats one picture.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from dppo_embodied.errors import MediaError
from dppo_embodied.images import load_image
from dppo_embodied.media import VideoStream
from robot_bridge.cameras.base import CameraError, Frame

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class VideoFileCamera:
    """Frames of a video file (PyAV) or a still image.

    Args:
        path: the file.
        name: camera name.
        loop: restart at the end (else :meth:`read` raises :class:`CameraError` at the end).
        fps: playback rate; default: the file's own rate (30 if unknown; 10 for still images).
        realtime: pace reads at ``fps`` (off = as fast as read).
    """

    def __init__(self, path: str | Path, name: str = "front", loop: bool = True, fps: float | None = None,
                 realtime: bool = True) -> None:
        self.path, self.name, self.loop, self.realtime = Path(path), name, loop, realtime
        self.fps = fps
        self._video: VideoStream | None = None
        self._still: np.ndarray | None = None
        self._index = 0
        self._next_t = 0.0

    def connect(self) -> None:
        """Open the file.

        Raises:
            CameraError: missing or unreadable file.
            DependencyNotInstalled: PyAV is missing (extra ``bridge``/``video``).
        """
        if not self.path.is_file():
            raise CameraError(f"video file {str(self.path)!r} does not exist")
        try:
            if self.path.suffix.lower() in IMAGE_SUFFIXES:
                self._still = np.asarray(load_image(self.path))
                self.fps = self.fps or 10.0
            else:
                self._video = VideoStream(self.path)
                self.fps = self.fps or self._video.fps or 30.0
        except MediaError as e:
            raise CameraError(str(e)) from e
        self._next_t = time.monotonic()

    def read(self) -> Frame:
        """The next frame, paced at ``fps`` when ``realtime``.

        Raises:
            CameraError: not connected, or the end of a non-looping file.
        """
        if self._video is None and self._still is None:
            raise CameraError(f"camera {self.name!r} is not connected; call connect() first")
        if self.realtime:
            delay = self._next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._next_t = max(self._next_t + 1.0 / float(self.fps or 30.0), time.monotonic() - 0.5)
        if self._still is not None:
            image = self._still
        else:
            image = self._next_video_frame()
        frame = Frame(image=image, t_capture=time.monotonic(), index=self._index, camera=self.name)
        self._index += 1
        return frame

    def _next_video_frame(self) -> np.ndarray:
        assert self._video is not None
        try:
            image = self._video.read()
            if image is None:
                if not self.loop:
                    raise CameraError(f"video {str(self.path)!r} ended")
                self._video.rewind()
                image = self._video.read()
        except MediaError as e:
            raise CameraError(str(e)) from e
        if image is None:
            raise CameraError(f"video {str(self.path)!r} has no readable frame")
        return image

    def disconnect(self) -> None:
        """Close the file. Idempotent."""
        if self._video is not None:
            self._video.close()
            self._video = None
        self._still = None
