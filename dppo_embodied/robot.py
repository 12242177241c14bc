"""The Robot interface shared by the robot bridge and the MuJoCo twin (matches LeRobot's ``Robot``).

A robot exposes ``observation_features`` and ``action_features`` (valid before ``connect()``), connects and
disconnects (also as a context manager), returns a flat observation dict and sends an action dict, returning the
action *actually sent* (possibly clipped) so that callers can log it. End-effector robots use the keys
``ee.x``, ``ee.y``, ``ee.z`` (metres, world frame) and ``gripper.pos`` (0 = open, 1 = closed); camera images are
``(H, W, 3) uint8 RGB`` arrays under their camera name, depth ``(H, W) float32`` metres under ``<camera>.depth``.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

EE_KEYS = ("ee.x", "ee.y", "ee.z", "gripper.pos")


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
