"""Test doubles of the bridge: a kinematic end-effector robot with a camera, and a scripted camera."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from dppo_embodied.geometry import CameraCalibration
from robot_bridge.cameras.base import CameraError, Frame

WORKSPACE = ((-0.25, -0.2, 0.0), (0.25, 0.2, 0.3))
HOME = (0.0, 0.15, 0.15)


def overhead_calibration(size: int = 64, height_m: float = 0.6) -> CameraCalibration:
    """A camera ``height_m`` above the origin looking straight down (image x = world x, image y = -world y)."""
    rot = np.diag([1.0, -1.0, -1.0])  # OpenCV camera: z forward (down), x right, y down (world -y)
    return CameraCalibration.from_fovy(size, size, 60.0, np.array([0.0, 0.0, height_m]), rot)


class FakeRobot:
    """Kinematic end-effector robot (LeRobot-compatible interface) with an overhead RGB-D camera ``front``.

    ``send_action`` jumps to the target (clipped to ``max_step`` per call, like ``max_relative_target``) and
    records every action. ``fail_sends`` makes the next N sends raise. Depth is the table plane, with a box of
    ``box_height`` metres centred at ``box_xy``.
    """

    name = "fake"

    def __init__(self, size: int = 64, max_step: float | None = None, box_xy: tuple[float, float] = (0.05, 0.05),
                 box_height: float = 0.04) -> None:
        self.size, self.max_step = size, max_step
        self.cal = overhead_calibration(size)
        self.pose = np.array([*HOME, 0.0])
        self.connected = False
        self.actions: list[dict[str, float]] = []
        self.action_times: list[float] = []
        self.fail_sends = 0
        self.box_xy, self.box_height = box_xy, box_height
        self.workspace = WORKSPACE
        self.home = HOME
        self.lock = threading.Lock()

    @property
    def observation_features(self) -> dict[str, Any]:
        return {"ee.x": float, "ee.y": float, "ee.z": float, "gripper.pos": float, "front": (self.size, self.size, 3),
                "front.depth": (self.size, self.size)}

    @property
    def action_features(self) -> dict[str, Any]:
        return {"ee.x": float, "ee.y": float, "ee.z": float, "gripper.pos": float}

    @property
    def is_connected(self) -> bool:
        return self.connected

    def connect(self, calibrate: bool = True) -> None:
        self.connected = True

    def disconnect(self) -> None:
        self.connected = False

    def get_state(self) -> dict[str, float]:
        x, y, z, g = (float(v) for v in self.pose)
        return {"ee.x": x, "ee.y": y, "ee.z": z, "gripper.pos": g}

    def depth(self) -> np.ndarray:
        """Z-depth of the table with the box (metres)."""
        h = self.cal.world_from_camera[2, 3]
        d = np.full((self.size, self.size), h, dtype=np.float32)
        lo = [self.cal.project(np.array([self.box_xy[0] + sx * 0.02, self.box_xy[1] + sy * 0.02, self.box_height]))
              for sx in (-1, 1) for sy in (-1, 1)]
        xs = [p[0] * self.size for p in lo]
        ys = [p[1] * self.size for p in lo]
        d[int(min(ys)):int(np.ceil(max(ys))), int(min(xs)):int(np.ceil(max(xs)))] = h - self.box_height
        return d

    def get_observation(self) -> dict[str, Any]:
        obs: dict[str, Any] = self.get_state()
        img = np.zeros((self.size, self.size, 3), dtype=np.uint8)
        img[..., 1] = 120
        u, v, _ = self.cal.project(self.pose[:3])
        if 0 <= u < 1 and 0 <= v < 1:
            img[int(v * self.size), int(u * self.size)] = (255, 0, 0)
        obs["front"] = img
        obs["front.depth"] = self.depth()
        return obs

    def send_action(self, action: dict[str, float]) -> dict[str, float]:
        with self.lock:
            if self.fail_sends > 0:
                self.fail_sends -= 1
                raise OSError("injected serial failure")
            target = np.array([action["ee.x"], action["ee.y"], action["ee.z"], action["gripper.pos"]], dtype=float)
            if self.max_step is not None:
                target[:3] = self.pose[:3] + np.clip(target[:3] - self.pose[:3], -self.max_step, self.max_step)
            self.pose = target
            self.actions.append(dict(action))
            self.action_times.append(time.monotonic())
            return self.get_state()

    def calibration(self, camera: str | None = None) -> CameraCalibration:
        return self.cal


class ScriptedCamera:
    """A camera returning synthetic frames at ``fps``; ``freeze`` repeats the last frame, ``stall`` blocks."""

    def __init__(self, name: str = "front", size: int = 32, fps: float = 50.0) -> None:
        self.name, self.size, self.fps = name, size, fps
        self.index = 0
        self.connected = False
        self.freeze = False
        self.stall = threading.Event()
        self.fail = 0
        self._last: np.ndarray | None = None

    def connect(self) -> None:
        self.connected = True

    def read(self) -> Frame:
        time.sleep(1.0 / self.fps)
        while self.stall.is_set():
            time.sleep(0.01)
        if self.fail > 0:
            self.fail -= 1
            raise CameraError("injected read failure")
        if self.freeze and self._last is not None:
            img = self._last
        else:
            img = np.full((self.size, self.size, 3), self.index % 251, dtype=np.uint8)
        self._last = img
        f = Frame(img, time.monotonic(), self.index, camera=self.name)
        self.index += 1
        return f

    def disconnect(self) -> None:
        self.connected = False
