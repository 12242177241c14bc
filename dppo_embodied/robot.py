"""The Robot interface shared by the robot bridge and the MuJoCo twin (matches LeRobot's ``Robot``).

A robot exposes ``observation_features`` and ``action_features`` (valid before ``connect()``), connects and
disconnects (also as a context manager), returns a flat observation dict and sends an action dict, returning the
action *actually sent* (possibly clipped) so that callers can log it. End-effector robots use the keys
``ee.x``, ``ee.y``, ``ee.z`` (metres, world frame) and ``gripper.pos`` (0 = open, 1 = closed); camera images are
``(H, W, 3) uint8 RGB`` arrays under their camera name, depth ``(H, W) float32`` metres under ``<camera>.depth``.

A robot may also carry a ``profile`` attribute (:class:`RobotProfile`, valid before ``connect()``): the static
facts a controller needs before moving it (workspace box, rest pose, table height, default camera). The robot
bridge reads it with :func:`profile_of`, so a robot from any package brings its own facts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

EE_KEYS = ("ee.x", "ee.y", "ee.z", "gripper.pos")

Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class RobotProfile:
    """Static facts about a robot (optional ``profile`` attribute of a :class:`Robot`).

    Attributes:
        workspace: ``(low, high)`` end-effector box, metres, world frame; None when unknown (the bridge then
            refuses to move until ``safety.workspace_min/max`` are set).
        home: rest pose ``(x, y, z)``, metres, world frame; None when unknown.
        plane_z: table height in the world frame, metres.
        camera: default camera spec of ``dppo bridge`` (``sim:front``: the robot's own ``front`` camera).
    """

    workspace: tuple[Vec3, Vec3] | None = None
    home: Vec3 | None = None
    plane_z: float = 0.0
    camera: str = "sim:front"


def profile_of(robot: Any) -> RobotProfile:
    """The robot's ``profile`` attribute, or the defaults when it has none."""
    profile = getattr(robot, "profile", None)
    return profile if isinstance(profile, RobotProfile) else RobotProfile()


@runtime_checkable
class Robot(Protocol):
    """Structural type of a robot (LeRobot-compatible)."""

    name: str

    @property
    def observation_features(self) -> dict[str, Any]:
        """Observation key -> ``float`` or an image shape tuple ``(H, W, 3)``."""
        ...

    @property
    def action_features(self) -> dict[str, Any]:
        """Action key -> ``float``."""
        ...

    @property
    def is_connected(self) -> bool:
        """True between :meth:`connect` and :meth:`disconnect`."""
        ...

    def connect(self, calibrate: bool = True) -> None:
        """Open the connection (and calibrate when asked)."""
        ...

    def disconnect(self) -> None:
        """Close the connection; safe to call twice."""
        ...

    def get_observation(self) -> dict[str, Any]:
        """A flat observation dict following ``observation_features``."""
        ...

    def send_action(self, action: dict[str, float]) -> dict[str, float]:
        """Send an action; return the action actually sent (possibly clipped)."""
        ...
