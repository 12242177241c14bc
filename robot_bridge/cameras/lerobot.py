"""LeRobot cameras (``lerobot.cameras``: OpenCV, Intel RealSense) when ``lerobot`` is installed.

LeRobot's ``async_read(timeout_ms)`` returns the newest unconsumed RGB frame; RealSense cameras configured with
``use_depth=True`` also give depth (millimetres, converted here to metres).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from dppo_embodied.imports import require
from robot_bridge.cameras.base import CameraError, Frame


def _lerobot_camera(kind: str, ident: str, width: int | None, height: int | None, fps: float | None) -> Any:
    require("lerobot", extra="lerobot")
    size = {k: v for k, v in (("width", width), ("height", height), ("fps", int(fps) if fps else None)) if v}
    if kind == "opencv":
        from lerobot.cameras.opencv import OpenCVCamera, OpenCVCameraConfig  # type: ignore[import-not-found]

        target: int | str = int(ident) if ident.isdigit() else ident
        return OpenCVCamera(OpenCVCameraConfig(index_or_path=target, **size))
    if kind == "realsense":
        from lerobot.cameras.realsense import (  # type: ignore[import-not-found]
            RealSenseCamera,
            RealSenseCameraConfig,
        )

        return RealSenseCamera(RealSenseCameraConfig(serial_number_or_name=ident, use_depth=True, **size))
    raise CameraError(f"unknown LeRobot camera kind {kind!r}; use 'lerobot:opencv:<index|path>' or "
                      "'lerobot:realsense:<serial>'")


class LeRobotCamera:
    """Adapter from a LeRobot camera to :class:`~robot_bridge.cameras.base.Camera`.

    Args:
        kind: ``"opencv"`` or ``"realsense"``.
        ident: device index/path or RealSense serial number.
        name: camera name.
        width: requested width.
        height: requested height.
        fps: requested frame rate.
        timeout_ms: ``async_read`` timeout.
        camera: an already built LeRobot camera object (tests, custom cameras); overrides kind/ident.
    """

    def __init__(self, kind: str = "opencv", ident: str = "0", name: str = "front", width: int | None = None,
                 height: int | None = None, fps: float | None = None, timeout_ms: float = 200.0,
                 camera: Any = None) -> None:
        self.name, self.timeout_ms = name, timeout_ms
        self._cam = camera if camera is not None else _lerobot_camera(kind, ident, width, height, fps)
        self._index = 0

    def connect(self) -> None:
        """Connect (LeRobot warms the camera up)."""
        if not getattr(self._cam, "is_connected", False):
            self._cam.connect()

    def read(self) -> Frame:
        """Newest frame (and depth in metres when the camera has it)."""
        try:
            image = self._cam.async_read(timeout_ms=self.timeout_ms)
        except TimeoutError as e:
            raise CameraError(f"LeRobot camera {self.name!r}: no frame within {self.timeout_ms} ms") from e
        t = time.monotonic()
        depth = None
        read_depth = getattr(self._cam, "read_depth", None)
        if callable(read_depth) and getattr(getattr(self._cam, "config", None), "use_depth", False):
            depth = np.asarray(read_depth(), dtype=np.float32) / 1000.0
        frame = Frame(image=np.asarray(image), t_capture=t, index=self._index, depth=depth, camera=self.name)
        self._index += 1
        return frame

    def disconnect(self) -> None:
        """Disconnect. Idempotent."""
        if getattr(self._cam, "is_connected", False):
            self._cam.disconnect()
