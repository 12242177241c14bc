"""A video file played as a camera, in real time (frames paced at the file's frame rate), looping by default.

Useful to replay a recorded session through the bridge, or to feed a fixed scene to a real model in dry-run.
Still images (``.jpg``/``.png``) work too, through Pillow, as a camera that repeats one picture.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from robot_bridge.cameras.base import CameraError, Frame
from robot_bridge.cameras.opencv import _cv2

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class VideoFileCamera:
    """Frames of a video file (OpenCV) or a still image (Pillow).

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
        self._cap: Any = None
        self._still: np.ndarray | None = None
        self._index = 0
        self._next_t = 0.0

    def connect(self) -> None:
        """Open the file.

        Raises:
            CameraError: missing or unreadable file.
        """
        if not self.path.is_file():
            raise CameraError(f"video file {str(self.path)!r} does not exist")
        if self.path.suffix.lower() in IMAGE_SUFFIXES:
            from dppo_embodied.errors import MediaError
            from dppo_embodied.images import load_image

            try:
                self._still = np.asarray(load_image(self.path))
            except MediaError as e:
                raise CameraError(str(e)) from e
            self.fps = self.fps or 10.0
        else:
            cv2 = _cv2()
            cap = cv2.VideoCapture(str(self.path))
            if not cap.isOpened():
                raise CameraError(f"cannot open video {str(self.path)!r}; is it a video OpenCV can decode?")
            self._cap = cap
            self.fps = self.fps or (cap.get(cv2.CAP_PROP_FPS) or 30.0)
        self._next_t = time.monotonic()

    def read(self) -> Frame:
        """The next frame, paced at ``fps`` when ``realtime``.

        Raises:
            CameraError: not connected, or the end of a non-looping file.
        """
        if self._cap is None and self._still is None:
            raise CameraError(f"camera {self.name!r} is not connected; call connect() first")
        if self.realtime:
            delay = self._next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._next_t = max(self._next_t + 1.0 / float(self.fps or 30.0), time.monotonic() - 0.5)
        if self._still is not None:
            image = self._still
        else:
            cv2 = _cv2()
            ok, bgr = self._cap.read()
            if not ok:
                if not self.loop:
                    raise CameraError(f"video {str(self.path)!r} ended")
                self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok, bgr = self._cap.read()
                if not ok:
                    raise CameraError(f"video {str(self.path)!r} has no readable frame")
            image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        frame = Frame(image=image, t_capture=time.monotonic(), index=self._index, camera=self.name)
        self._index += 1
        return frame

    def disconnect(self) -> None:
        """Close the file. Idempotent."""
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        self._still = None
