"""OpenCV cameras: a USB/V4L2 device (index or ``/dev/videoN``) or a network stream (``rtsp://``, ``http://``).

Frames are converted to RGB. ``fourcc="MJPG"`` avoids USB bandwidth timeouts with several cameras (lerobot
#1083); a small driver buffer (``CAP_PROP_BUFFERSIZE=1``) keeps the newest frame near the head of the queue.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from dppo_embodied.imports import require
from robot_bridge.cameras.base import CameraError, Frame

logger = logging.getLogger(__name__)


def _cv2() -> Any:
    return require("cv2", extra="bridge", package="opencv-python-headless")


class OpenCVCamera:
    """A camera read with ``cv2.VideoCapture``.

    Args:
        index_or_path: device index (``0``), device path (``/dev/video0``), or stream URL.
        name: camera name (observation key).
        width: requested width in pixels (``None`` = driver default).
        height: requested height in pixels.
        fps: requested frame rate.
        fourcc: requested pixel format, e.g. ``"MJPG"``.
    """

    def __init__(self, index_or_path: int | str, name: str = "front", width: int | None = None,
                 height: int | None = None, fps: float | None = None, fourcc: str | None = None) -> None:
        self.index_or_path, self.name = index_or_path, name
        self.width, self.height, self.fps, self.fourcc = width, height, fps, fourcc
        self._cap: Any = None
        self._index = 0

    def connect(self) -> None:
        """Open the device or stream.

        Raises:
            CameraError: it cannot be opened (the message names it).
        """
        cv2 = _cv2()
        cap = cv2.VideoCapture(self.index_or_path)
        if not cap.isOpened():
            cap.release()
            raise CameraError(f"cannot open camera {self.index_or_path!r}: check the index/path/URL, permissions "
                              "(video group) and that no other program holds it")
        if self.fourcc:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*self.fourcc))
        if self.width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        if self.height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        if self.fps:
            cap.set(cv2.CAP_PROP_FPS, self.fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self._cap = cap

    def read(self) -> Frame:
        """Grab the next frame (blocking).

        Raises:
            CameraError: not connected, or the read failed.
        """
        if self._cap is None:
            raise CameraError(f"camera {self.name!r} is not connected; call connect() first")
        ok, bgr = self._cap.read()
        t = time.monotonic()
        if not ok or bgr is None:
            raise CameraError(f"camera {self.index_or_path!r}: read failed (unplugged? stream ended?)")
        cv2 = _cv2()
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if bgr.ndim == 3 else np.stack([bgr] * 3, axis=-1)
        frame = Frame(image=rgb, t_capture=t, index=self._index, camera=self.name)
        self._index += 1
        return frame

    def disconnect(self) -> None:
        """Release the device. Idempotent."""
        if self._cap is not None:
            self._cap.release()
            self._cap = None
