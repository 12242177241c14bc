"""Cameras of the robot bridge, created from a ``--camera SPEC`` string.

Specs:

* ``sim`` / ``sim:NAME``: the robot's own camera ``NAME`` (default ``front``): the MuJoCo twin's renderer, or the
  cameras a LeRobot robot reads itself;
* ``opencv:0``, ``0``, ``/dev/video0``: an OpenCV device;
* ``rtsp://...``, ``http://...``: an OpenCV network stream;
* ``video:PATH`` or a path ending in a video/image suffix: a file played in real time, looping;
* ``lerobot:opencv:0``, ``lerobot:realsense:SERIAL``: LeRobot's camera classes (needs ``lerobot``).
"""

from __future__ import annotations

from typing import Any

from dppo_embodied.errors import ConfigError
from dppo_embodied.registry import Registry
from robot_bridge.cameras.base import Camera, CameraError, Frame, LatestFrame, StaleFrameError

__all__ = ["CAMERAS", "Camera", "CameraError", "Frame", "LatestFrame", "StaleFrameError", "make_camera"]

CAMERAS: Registry[Any] = Registry("camera")
CAMERAS.register("sim", "robot_bridge.cameras.sim:RobotCamera", help="the robot's own camera (sim renderer)")
CAMERAS.register("opencv", "robot_bridge.cameras.opencv:OpenCVCamera", help="OpenCV device or network stream")
CAMERAS.register("video", "robot_bridge.cameras.video:VideoFileCamera", help="video/image file, real time, looping")
CAMERAS.register("lerobot", "robot_bridge.cameras.lerobot:LeRobotCamera", help="LeRobot OpenCV/RealSense camera")

_VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".jpg", ".jpeg", ".png", ".bmp", ".webp")


def parse_spec(spec: str) -> tuple[str, str]:
    """Split a camera spec into ``(kind, target)``, e.g. ``"sim:front"`` → ``("sim", "front")``.

    Raises:
        ConfigError: an empty or unknown spec (the message lists the forms).
    """
    s = spec.strip()
    if not s:
        raise ConfigError("empty --camera; use e.g. 'sim', 'opencv:0', 'video:clip.mp4' or 'rtsp://host/stream'")
    if s.startswith(("rtsp://", "http://", "https://", "rtmp://", "udp://", "tcp://")):
        return "opencv", s
    if s.isdigit() or s.startswith("/dev/video"):
        return "opencv", s
    kind, sep, target = s.partition(":")
    if sep and kind in CAMERAS:
        return kind, target
    if not sep and kind == "sim":
        return "sim", "front"
    if s.lower().endswith(_VIDEO_SUFFIXES):
        return "video", s
    raise ConfigError(f"cannot read --camera {spec!r}; valid forms: sim[:NAME], opencv:INDEX|PATH, INDEX, "
                      f"/dev/videoN, rtsp://..., video:PATH, a video/image path, lerobot:opencv:INDEX, "
                      f"lerobot:realsense:SERIAL")


def make_camera(spec: str, robot: Any = None, name: str | None = None, width: int | None = None,
                height: int | None = None, fps: float | None = None) -> Camera:
    """Build the camera a spec describes.

    Args:
        spec: see the module docstring.
        robot: the robot (needed by ``sim``).
        name: camera name (observation key); defaults to the sim camera name or ``"front"``.
        width: requested width (devices).
        height: requested height (devices).
        fps: requested/playback frame rate.

    Raises:
        ConfigError: bad spec, or ``sim`` without a robot.
    """
    kind, target = parse_spec(spec)
    factory = CAMERAS.get(kind)
    if kind == "sim":
        if robot is None:
            raise ConfigError("--camera sim reads the robot's own camera; it needs a robot (--robot sim)")
        return factory(robot, name=target or name or "front")
    cam_name = name or "front"
    if kind == "opencv":
        ident: int | str = int(target) if target.isdigit() else target
        return factory(ident, name=cam_name, width=width, height=height, fps=fps)
    if kind == "video":
        return factory(target, name=cam_name, fps=fps)
    sub, _, ident_s = target.partition(":")
    return factory(kind=sub or "opencv", ident=ident_s or "0", name=cam_name, width=width, height=height, fps=fps)
