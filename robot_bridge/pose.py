"""End-effector poses and timed waypoints: the bridge's internal action vocabulary.

Frames and units follow :mod:`dppo_embodied.robot`: ``ee.x``, ``ee.y``, ``ee.z`` in metres in the world (robot
base) frame, ``gripper.pos`` in [0, 1] with 0 = open and 1 = closed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from dppo_embodied.robot import EE_KEYS

GRIPPER_OPEN, GRIPPER_CLOSED = 0.0, 1.0


@dataclass(frozen=True)
class EEPose:
    """End-effector position (metres, world frame) and gripper (0 = open, 1 = closed)."""

    x: float
    y: float
    z: float
    gripper: float = GRIPPER_OPEN

    @property
    def xyz(self) -> np.ndarray:
        """Position as a ``(3,)`` float array."""
        return np.array([self.x, self.y, self.z], dtype=np.float64)

    def with_xyz(self, p: Any) -> EEPose:
        """Same gripper, new position."""
        return replace(self, x=float(p[0]), y=float(p[1]), z=float(p[2]))

    def with_gripper(self, g: float) -> EEPose:
        """Same position, new gripper value."""
        return replace(self, gripper=float(g))

    def is_finite(self) -> bool:
        """Whether every field is a finite number."""
        return all(math.isfinite(v) for v in (self.x, self.y, self.z, self.gripper))

    def distance(self, other: EEPose) -> float:
        """Euclidean distance of the positions (metres)."""
        return float(math.dist((self.x, self.y, self.z), (other.x, other.y, other.z)))

    def to_action(self) -> dict[str, float]:
        """The robot action dict ``{"ee.x", "ee.y", "ee.z", "gripper.pos"}``."""
        return dict(zip(EE_KEYS, (float(self.x), float(self.y), float(self.z), float(self.gripper)), strict=True))

    def to_list(self) -> list[float]:
        """``[x, y, z, gripper]``."""
        return [float(self.x), float(self.y), float(self.z), float(self.gripper)]

    @classmethod
    def from_observation(cls, obs: dict[str, Any]) -> EEPose:
        """Read ``ee.x/ee.y/ee.z/gripper.pos`` from an observation or action dict.

        Raises:
            KeyError: a key is missing (the robot is not an end-effector robot).
        """
        return cls(*(float(obs[k]) for k in EE_KEYS))


@dataclass(frozen=True)
class Waypoint:
    """One target of the executor queue.

    Attributes:
        pose: where to go (metres) and the gripper value to reach.
        t_obs: ``time.monotonic()`` of the camera frame the decision was made on.
        ttl_s: the waypoint expires at ``t_obs + ttl_s`` (dropped, never executed late).
        decision: index of the decision that produced it.
        label: what it is for (``"approach"``, ``"descend"``, ``"close"``...), for logs and recordings.
        tolerance_m: reached when within this distance (and the gripper within 0.05).
        dwell_s: stay this long once reached (e.g. let the fingers close).
        speed_m_s: optional lower speed for this segment (pushing, descending); never above the safety cap.
    """

    pose: EEPose
    t_obs: float
    ttl_s: float = 1.5
    decision: int = -1
    label: str = ""
    tolerance_m: float = 0.004
    dwell_s: float = 0.0
    speed_m_s: float | None = None

    def expired(self, now: float) -> bool:
        """Whether the waypoint is past its time-to-live."""
        return now > self.t_obs + self.ttl_s
