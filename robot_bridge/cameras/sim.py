"""Frames from the robot's own observation: the simulator's renderer (MuJoCo twin) or cameras a LeRobot robot
reads itself.

The robot returns its camera image under the camera name (``(H, W, 3) uint8`` RGB) and, when it has one, the depth
under ``"<name>.depth"`` (``(H, W) float32`` metres). Calls go through the robot, which the bridge serialises with
a lock (:class:`robot_bridge.robots.LockedRobot`), so rendering never races a control step.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from robot_bridge.cameras.base import CameraError, Frame


class RobotCamera:
    """A camera served by a robot's :meth:`get_observation` (the sim twin's renderer, LeRobot robot cameras).

    Args:
        robot: the (connected) robot; prefers a ``render(camera)`` method when the robot has one (renders just
            that camera), else reads ``get_observation()``.
        name: the camera name (observation key).
    """

    def __init__(self, robot: Any, name: str = "front") -> None:
        self.robot, self.name = robot, name
        self._index = 0

    def connect(self) -> None:
        """Check that the robot serves this camera.

        Raises:
            CameraError: the robot has no such image feature.
        """
        feats = getattr(self.robot, "observation_features", {}) or {}
        if feats and self.name not in feats:
            images = [k for k, v in feats.items() if isinstance(v, tuple) and len(v) == 3]
            raise CameraError(f"robot {getattr(self.robot, 'name', '?')!r} has no camera {self.name!r}; "
                              f"its cameras: {images or '(none)'}")

    def read(self) -> Frame:
        """Render/read the current image (and depth when available).

        Raises:
            CameraError: the observation lacks the image.
        """
        render = getattr(self.robot, "render", None)
        obs = render(self.name) if callable(render) else self.robot.get_observation()
        t = time.monotonic()
        image = obs.get(self.name) if isinstance(obs, dict) else None
        if not isinstance(image, np.ndarray) or image.ndim != 3:
            raise CameraError(f"robot observation has no image under {self.name!r}")
        depth = obs.get(f"{self.name}.depth")
        frame = Frame(image=image, t_capture=t, index=self._index,
                      depth=depth if isinstance(depth, np.ndarray) else None, camera=self.name)
        self._index += 1
        return frame

    def disconnect(self) -> None:
        """Release the robot's renderer from this thread when the robot allows it (EGL contexts are per thread)."""
        release = getattr(self.robot, "release_render", None)
        if callable(release):
            release()
