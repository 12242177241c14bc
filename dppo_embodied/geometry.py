"""Pinhole camera geometry shared by the simulator and the robot bridge: normalized image points → 3-D.

Conventions: image points are normalized ``(x, y)`` in [0, 1], origin top-left, x right, y down. Camera frame is
OpenCV's (z forward, x right, y down). ``world_from_camera`` is a 4×4 rigid transform. MuJoCo cameras look along
their −z axis with y up: :func:`mujoco_to_opencv_rotation` converts their ``cam_xmat``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


def mujoco_to_opencv_rotation(cam_xmat: np.ndarray) -> np.ndarray:
    """World-from-camera rotation in OpenCV convention from MuJoCo's ``cam_xmat`` (3×3 or 9 values)."""
    r = np.asarray(cam_xmat, dtype=np.float64).reshape(3, 3)
    return r @ np.diag([1.0, -1.0, -1.0])


@dataclass
class CameraCalibration:
    """Intrinsics and extrinsics of one camera.

    Attributes:
        width: image width in pixels.
        height: image height in pixels.
        fx: focal length in pixels (x).
        fy: focal length in pixels (y).
        cx: principal point x in pixels.
        cy: principal point y in pixels.
        world_from_camera: 4×4 transform, OpenCV camera frame to world frame (metres).
    """

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    world_from_camera: np.ndarray = field(default_factory=lambda: np.eye(4))

    @classmethod
    def from_fovy(cls, width: int, height: int, fovy_deg: float, position: np.ndarray,
                  rotation_world_from_cv: np.ndarray) -> CameraCalibration:
        """Build from a vertical field of view (MuJoCo's ``fovy``) and a pose."""
        f = (height / 2.0) / math.tan(math.radians(fovy_deg) / 2.0)
        t = np.eye(4)
        t[:3, :3] = np.asarray(rotation_world_from_cv, dtype=np.float64).reshape(3, 3)
        t[:3, 3] = np.asarray(position, dtype=np.float64).reshape(3)
        return cls(width, height, f, f, width / 2.0, height / 2.0, t)

    def pixel(self, x: float, y: float) -> tuple[float, float]:
        """Normalized point → pixel coordinates ``(u, v)``."""
        return x * self.width, y * self.height

    def backproject(self, x: float, y: float, depth_m: float) -> np.ndarray:
        """World point seen at normalized ``(x, y)`` with z-depth ``depth_m`` (metres along the optical axis)."""
        u, v = self.pixel(x, y)
        p_c = np.array([(u - self.cx) * depth_m / self.fx, (v - self.cy) * depth_m / self.fy, depth_m, 1.0])
        return (self.world_from_camera @ p_c)[:3]

    def ray(self, x: float, y: float) -> tuple[np.ndarray, np.ndarray]:
        """World-frame ray ``(origin, unit direction)`` through normalized ``(x, y)``."""
        u, v = self.pixel(x, y)
        d_c = np.array([(u - self.cx) / self.fx, (v - self.cy) / self.fy, 1.0])
        r = self.world_from_camera[:3, :3]
        d = r @ d_c
        return self.world_from_camera[:3, 3].copy(), d / np.linalg.norm(d)

    def intersect_plane(self, x: float, y: float, plane_z: float) -> np.ndarray | None:
        """Table-plane fallback: where the ray through ``(x, y)`` meets the plane ``z = plane_z`` (None if never)."""
        o, d = self.ray(x, y)
        if abs(d[2]) < 1e-9:
            return None
        s = (plane_z - o[2]) / d[2]
        if s <= 0:
            return None
        return o + s * d

    def project(self, point_w: np.ndarray) -> tuple[float, float, float]:
        """World point → normalized ``(x, y)`` and its z-depth (depth ≤ 0 means behind the camera)."""
        inv = np.linalg.inv(self.world_from_camera)
        p = inv @ np.append(np.asarray(point_w, dtype=np.float64), 1.0)
        z = p[2]
        if abs(z) < 1e-12:
            return float("nan"), float("nan"), 0.0
        u = self.fx * p[0] / z + self.cx
        v = self.fy * p[1] / z + self.cy
        return u / self.width, v / self.height, float(z)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return {"width": self.width, "height": self.height, "fx": self.fx, "fy": self.fy, "cx": self.cx,
                "cy": self.cy, "world_from_camera": np.asarray(self.world_from_camera).tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> CameraCalibration:
        """Inverse of :meth:`to_dict`."""
        return cls(int(d["width"]), int(d["height"]), float(d["fx"]), float(d["fy"]),  # type: ignore[arg-type]
                   float(d["cx"]), float(d["cy"]), np.asarray(d["world_from_camera"], dtype=np.float64))
