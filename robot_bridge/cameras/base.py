"""Camera interface and the latest-frame capture thread.

A :class:`Camera` returns timestamped :class:`Frame` objects from a blocking :meth:`Camera.read`. The planner
never reads a camera directly: a :class:`LatestFrame` thread reads continuously and keeps **only the newest**
frame with its capture time, so a decision always sees the freshest image and a slow planner never builds up a
backlog. :meth:`LatestFrame.read_latest` refuses frames older than ``max_age_s`` (a stalled USB camera, a dead
stream) with :class:`StaleFrameError`, and optionally frames that repeat bit-for-bit (a frozen driver that keeps
returning the same buffer, lerobot #1675) after ``max_identical`` repeats.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from dppo_embodied.errors import SafetyError

logger = logging.getLogger(__name__)


class StaleFrameError(SafetyError):
    """No fresh frame: the newest one is too old, frozen, or the camera never delivered one. The robot holds."""


class CameraError(SafetyError):
    """A camera could not be opened or read; the message names the device and what to check."""


@dataclass
class Frame:
    """One camera frame.

    Attributes:
        image: ``(H, W, 3) uint8`` RGB.
        t_capture: ``time.monotonic()`` when the frame was captured (seconds).
        index: frame counter of the camera (0-based).
        depth: optional ``(H, W) float32`` z-depth in metres (RGB-D cameras, the simulator).
        camera: the camera name.
    """

    image: np.ndarray
    t_capture: float
    index: int = 0
    depth: np.ndarray | None = None
    camera: str = "front"
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` in pixels."""
        return int(self.image.shape[1]), int(self.image.shape[0])

    def age(self, now: float | None = None) -> float:
        """Seconds since capture."""
        return (time.monotonic() if now is None else now) - self.t_capture


@runtime_checkable
class Camera(Protocol):
    """A frame source (OpenCV device, video file or stream, simulator renderer, LeRobot camera)."""

    name: str

    def connect(self) -> None:
        """Open the device."""
        ...

    def read(self) -> Frame:
        """Block until the next frame and return it (raise :class:`CameraError` on failure)."""
        ...

    def disconnect(self) -> None:
        """Release the device; safe to call twice."""
        ...


def _fingerprint(image: np.ndarray) -> int:
    """Cheap content hash of a frame (a sparse subsample), to detect frozen drivers."""
    sub = np.ascontiguousarray(image[::7, ::7])
    return zlib.crc32(sub.tobytes())


class LatestFrame:
    """Background capture thread that keeps only the newest frame.

    Args:
        camera: the camera (connected by :meth:`start`, disconnected by :meth:`stop`).
        max_age_s: frames older than this are refused by :meth:`read_latest` (seconds).
        max_identical: after this many bit-identical consecutive frames the feed counts as frozen (``None`` =
            off; leave it off for simulators, whose static scenes render identical frames).
        min_period_s: minimum time between reads (throttles cameras that return instantly, e.g. a renderer).
        reconnect_after: consecutive read failures before trying to reconnect the camera.
    """

    def __init__(self, camera: Camera, max_age_s: float = 0.5, max_identical: int | None = None,
                 min_period_s: float = 0.0, reconnect_after: int = 10) -> None:
        if max_age_s <= 0:
            raise ValueError(f"max_age_s must be positive, got {max_age_s}")
        self.camera = camera
        self.max_age_s, self.max_identical = max_age_s, max_identical
        self.min_period_s, self.reconnect_after = min_period_s, reconnect_after
        self._lock = threading.Lock()
        self._new = threading.Condition(self._lock)
        self._frame: Frame | None = None
        self._fresh_t: float = float("-inf")  # capture time of the last *changed* frame
        self._fp: int | None = None
        self._repeats = 0
        self._errors = 0
        self.frames_read = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        """The camera name."""
        return self.camera.name

    def start(self) -> LatestFrame:
        """Connect the camera and start capturing."""
        self.camera.connect()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"camera-{self.camera.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop capturing and disconnect. Idempotent.

        The capture thread disconnects the camera itself before it ends (thread-bound resources such as an EGL
        rendering context are released by the thread that used them).
        """
        self._stop.set()
        with self._new:
            self._new.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)
        self._thread = None
        if thread is None or thread.is_alive():
            self._disconnect()

    def _disconnect(self) -> None:
        try:
            self.camera.disconnect()
        except Exception as e:  # disconnect must never raise during shutdown
            logger.warning("camera %s: disconnect failed: %s", self.camera.name, e)

    def __enter__(self) -> LatestFrame:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def push(self, frame: Frame) -> None:
        """Offer a frame (the capture thread does this; tests and synchronous sources may too)."""
        fp = _fingerprint(frame.image) if self.max_identical is not None else None
        with self._new:
            if fp is not None and fp == self._fp:
                self._repeats += 1
            else:
                self._repeats = 0
                self._fresh_t = frame.t_capture
            self._fp = fp
            self._frame = frame
            self.frames_read += 1
            self._new.notify_all()

    def _run(self) -> None:
        last = 0.0
        while not self._stop.is_set():
            wait = self.min_period_s - (time.monotonic() - last)
            if wait > 0 and self._stop.wait(wait):
                break
            last = time.monotonic()
            try:
                frame = self.camera.read()
            except Exception as e:
                self._errors += 1
                self.last_error = f"{type(e).__name__}: {e}"
                logger.warning("camera %s: read failed (%s)", self.camera.name, self.last_error)
                if self._errors % self.reconnect_after == 0:
                    self._reconnect()
                if self._stop.wait(min(0.05 * self._errors, 1.0)):
                    break
                continue
            self._errors = 0
            self.push(frame)
        self._disconnect()

    def _reconnect(self) -> None:
        logger.warning("camera %s: reconnecting after %d failures", self.camera.name, self._errors)
        try:
            self.camera.disconnect()
            self.camera.connect()
        except Exception as e:
            self.last_error = f"reconnect failed: {e}"
            logger.warning("camera %s: %s", self.camera.name, self.last_error)

    def read_latest(self, max_age_s: float | None = None, now: float | None = None) -> Frame:
        """The newest frame, if fresh.

        Args:
            max_age_s: override of the age limit (seconds).
            now: the current ``time.monotonic()`` (for tests).

        Raises:
            StaleFrameError: no frame yet, the newest is older than the limit, or the feed is frozen.
        """
        limit = self.max_age_s if max_age_s is None else max_age_s
        t = time.monotonic() if now is None else now
        with self._lock:
            frame, repeats, fresh_t = self._frame, self._repeats, self._fresh_t
        if frame is None:
            raise StaleFrameError(f"camera {self.camera.name!r} has not delivered a frame yet"
                                  + (f" (last error: {self.last_error})" if self.last_error else ""))
        age = t - frame.t_capture
        if age > limit:
            raise StaleFrameError(f"camera {self.camera.name!r}: newest frame is {age * 1000:.0f} ms old "
                                  f"(limit {limit * 1000:.0f} ms); check the cable/stream, or lower its resolution")
        if self.max_identical is not None and repeats >= self.max_identical and t - fresh_t > limit:
            raise StaleFrameError(f"camera {self.camera.name!r}: {repeats} identical frames in a row "
                                  "(frozen driver?); try fourcc MJPG or a lower resolution")
        return frame

    def wait_first(self, timeout_s: float = 10.0) -> Frame:
        """Block until the first frame arrives.

        Raises:
            StaleFrameError: none within ``timeout_s``.
        """
        t_end = time.monotonic() + timeout_s
        with self._new:
            while self._frame is None:
                remaining = t_end - time.monotonic()
                if remaining <= 0 or self._stop.is_set():
                    raise StaleFrameError(f"camera {self.camera.name!r} delivered no frame within {timeout_s} s"
                                          + (f" (last error: {self.last_error})" if self.last_error else ""))
                self._new.wait(remaining)
            return self._frame
