"""From a parsed action to timed waypoints: point → 3-D target → approach/descend/grasp/lift sequences.

Point actions are normalized image coordinates ``(x, y)`` on the frame the decision was made on. They become a
3-D point with the camera's calibration (:class:`dppo_embodied.geometry.CameraCalibration`): the depth image
when the frame has one (median of a small patch, z-depth in metres), else the ray meets the table plane
``z = plane_z`` (calibrated extrinsics, no depth). Then:

* ``move_to``: transit (up to ``safe_z_m``, across, down) to ``hover_m`` above the pointed surface;
* ``grasp``: open, go over at ``safe_z_m``, come down above the surface, descend ``grasp_depth_m`` below the
  pointed top surface, close (dwell), lift back to ``safe_z_m``;
* ``place``: carry at ``safe_z_m`` over the point, lower the held object onto the pointed surface, open (dwell),
  lift;
* ``push``: close, lower where the gripper is to ``push_z_m``, sweep to the point slowly, lift, open.

Grasp, place and push end at the rest pose (``home``) when it is known, so the next frame shows the table
unobstructed, as the simulated envs do (``envs.executor``). ``move`` is a relative motion (each axis clipped to
``max_move_cm``) followed by the gripper change; ``done`` produces no motion. Every waypoint gets a time-to-live
of ``ttl_s`` plus the time planned to reach it, so long sequences are not cut short, yet nothing executes late.
Heights are world z in metres (table top ``plane_z``); the sequences mirror the simulator's scripted primitives
(``envs.control``) so the twin and a real arm behave alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dppo_embodied.actions import Action, DoneAction, MoveAction, PointAction, SkillAction
from dppo_embodied.errors import ConfigError
from dppo_embodied.geometry import CameraCalibration
from dppo_embodied.parsing import NoAnswer
from robot_bridge.pose import GRIPPER_CLOSED, GRIPPER_OPEN, EEPose, Waypoint


@dataclass
class MotionConfig:
    """Heights (metres, world z), speeds (m/s) and timings (s) of the motion sequences.

    Attributes:
        plane_z: table height in the world frame (fallback surface when there is no depth).
        hover_m: ``move_to`` hovers this far above the pointed surface.
        safe_z_m: carry/transit height.
        approach_m: stop this far above the surface before descending to grasp.
        grasp_depth_m: grasp this far below the pointed top surface.
        push_z_m: TCP height while pushing.
        place_clearance_m: release the held object this far above the target surface.
        max_move_cm: one ``move`` action is clipped to this many centimetres per axis.
        descend_speed: speed of the final approach segments.
        push_speed: sweep speed while pushing.
        grip_dwell_s: wait after closing/opening the gripper.
        depth_patch: odd size of the window whose median replaces an invalid depth pixel.
        max_depth_m: depth readings beyond this (or ≤ 0) are ignored.
        home: rest pose ``(x, y, z)`` reached after grasp/place/push (``None`` = stay).
    """

    plane_z: float = 0.0
    hover_m: float = 0.05
    safe_z_m: float = 0.20
    approach_m: float = 0.03
    grasp_depth_m: float = 0.025
    push_z_m: float = 0.012
    place_clearance_m: float = 0.004
    max_move_cm: float = 10.0
    descend_speed: float = 0.1
    push_speed: float = 0.1
    grip_dwell_s: float = 0.15
    depth_patch: int = 5
    max_depth_m: float = 10.0
    home: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        if self.depth_patch < 1 or self.depth_patch % 2 == 0:
            raise ConfigError(f"motion.depth_patch must be a positive odd number, got {self.depth_patch}")
        if self.max_move_cm <= 0 or self.safe_z_m <= self.plane_z:
            raise ConfigError("motion.max_move_cm must be > 0 and motion.safe_z_m above motion.plane_z")


def depth_at(depth: np.ndarray, x: float, y: float, patch: int = 5, max_depth_m: float = 10.0) -> float | None:
    """Z-depth (metres) at normalized ``(x, y)``: the pixel itself when valid, else the median of the valid values
    in a ``patch``×``patch`` window (holes of RGB-D sensors); None when there is none.

    The pixel comes first because small objects span few pixels: a window would mix in the table behind them.
    """
    h, w = depth.shape[:2]
    u = min(w - 1, max(0, int(x * w)))
    v = min(h - 1, max(0, int(y * h)))
    c = float(depth[v, u])
    if np.isfinite(c) and 0 < c < max_depth_m:
        return c
    r = patch // 2
    win = np.asarray(depth[max(0, v - r): v + r + 1, max(0, u - r): u + r + 1], dtype=np.float64)
    vals = win[np.isfinite(win) & (win > 0) & (win < max_depth_m)]
    return float(np.median(vals)) if vals.size else None


def point_to_world(calibration: CameraCalibration, x: float, y: float, depth: np.ndarray | None = None,
                   plane_z: float = 0.0, patch: int = 5, max_depth_m: float = 10.0) -> tuple[np.ndarray, str] | None:
    """World point seen at normalized ``(x, y)``: depth back-projection, else the table-plane intersection.

    Args:
        calibration: the camera's intrinsics/extrinsics.
        x: normalized x in [0, 1] (right).
        y: normalized y in [0, 1] (down).
        depth: optional ``(H, W)`` z-depth in metres aligned with the image.
        plane_z: table height for the fallback.
        patch: depth median window.
        max_depth_m: ignore depth beyond this.

    Returns:
        ``(xyz, source)`` with source ``"depth"`` or ``"plane"``, or None when the ray misses the plane.
    """
    if depth is not None:
        z = depth_at(depth, x, y, patch, max_depth_m)
        if z is not None:
            return calibration.backproject(x, y, z), "depth"
    p = calibration.intersect_plane(x, y, plane_z)
    return (p, "plane") if p is not None else None


class MotionPlanner:
    """Turns parsed actions into waypoints for the executor.

    Args:
        config: heights, speeds, timings.
        calibration: camera calibration for point actions (``None`` = point actions are refused).
        ttl_s: base time-to-live of every waypoint.
        speed_m_s: the executor's speed cap (to estimate segment durations).
        skills: optional skill library (:class:`robot_bridge.skills.SkillLibrary`).
    """

    def __init__(self, config: MotionConfig | None = None, calibration: CameraCalibration | None = None,
                 ttl_s: float = 1.5, speed_m_s: float = 0.15, skills: object | None = None) -> None:
        self.config = config or MotionConfig()
        self.calibration, self.ttl_s, self.speed_m_s = calibration, ttl_s, speed_m_s
        self.skills = skills
        self.held_bottom_offset: float | None = None  # TCP z minus the held object's bottom, from the last grasp

    # ------------------------------------------------------------------------------------------ sequences
    def timed(self, poses: list[tuple[EEPose, str, float | None, float]], start: EEPose, t_obs: float,
               decision: int) -> list[Waypoint]:
        """Attach TTLs: base TTL plus the cumulative planned time to reach each waypoint."""
        out, t, prev = [], 0.0, start
        for pose, label, speed, dwell in poses:
            v = min(speed or self.speed_m_s, self.speed_m_s)
            t += prev.distance(pose) / v + abs(pose.gripper - prev.gripper) * 0.5 + dwell
            out.append(Waypoint(pose, t_obs, self.ttl_s + t, decision, label, dwell_s=dwell, speed_m_s=speed))
            prev = pose
        return out

    def point_3d(self, x: float, y: float, depth: np.ndarray | None) -> tuple[np.ndarray, str] | NoAnswer:
        """3-D point of an image point (see :func:`point_to_world`)."""
        if self.calibration is None:
            return NoAnswer("point actions need a calibrated camera; use move actions (or pass --calibration)")
        c = self.config
        hit = point_to_world(self.calibration, x, y, depth, c.plane_z, c.depth_patch, c.max_depth_m)
        if hit is None:
            return NoAnswer(f"point ({x:.2f}, {y:.2f}) does not look at the table; point at the table or an object")
        return hit

    def _home(self, last: EEPose) -> list[tuple[EEPose, str, float | None, float]]:
        """Transit from ``last`` to the rest pose (gripper unchanged), when one is configured."""
        h = self.config.home
        if h is None:
            return []
        return self.transit(last, np.asarray(h, dtype=np.float64), "home")

    def transit(self, start: EEPose, goal: np.ndarray, label: str) -> list[tuple[EEPose, str, float | None, float]]:
        """Up to ``safe_z_m`` (if the goal is more than 3 cm away horizontally), across, then down to ``goal``."""
        top = max(self.config.safe_z_m, start.z)
        seq = []
        if math.hypot(goal[0] - start.x, goal[1] - start.y) > 0.03:
            seq += [(EEPose(start.x, start.y, top, start.gripper), "up", None, 0.0),
                    (EEPose(goal[0], goal[1], top, start.gripper), "across", None, 0.0)]
        seq.append((EEPose(goal[0], goal[1], goal[2], start.gripper), label, None, 0.0))
        return seq

    def grasp_at(self, p: np.ndarray, state: EEPose) -> list[tuple[EEPose, str, float | None, float]]:
        """Grasp sequence around surface point ``p`` (top of the object), then home."""
        c = self.config
        top = float(p[2])
        grasp_z = max(c.plane_z + 0.005, top - c.grasp_depth_m)
        above = max(top + c.approach_m, grasp_z)
        self.held_bottom_offset = grasp_z - c.plane_z
        o, g = GRIPPER_OPEN, GRIPPER_CLOSED
        seq = self.transit(state.with_gripper(o), np.array([p[0], p[1], above]), "approach")
        seq += [
            (EEPose(p[0], p[1], grasp_z, o), "descend", c.descend_speed, 0.0),
            (EEPose(p[0], p[1], grasp_z, g), "close", None, c.grip_dwell_s),
            (EEPose(p[0], p[1], c.safe_z_m, g), "lift", c.descend_speed, 0.0),
        ]
        return seq + self._home(seq[-1][0])

    def place_at(self, p: np.ndarray, state: EEPose) -> list[tuple[EEPose, str, float | None, float]]:
        """Place sequence: lower the held object onto surface point ``p``, release, lift, then home."""
        c = self.config
        offset = self.held_bottom_offset if self.held_bottom_offset is not None else c.approach_m
        tcp_z = float(p[2]) + offset + c.place_clearance_m
        o = GRIPPER_OPEN
        self.held_bottom_offset = None
        seq = self.transit(state.with_gripper(GRIPPER_CLOSED), np.array([p[0], p[1], tcp_z + 0.04]), "approach")
        seq += [
            (EEPose(p[0], p[1], tcp_z, GRIPPER_CLOSED), "lower", c.descend_speed, 0.0),
            (EEPose(p[0], p[1], tcp_z, o), "release", None, c.grip_dwell_s),
            (EEPose(p[0], p[1], max(c.safe_z_m, tcp_z), o), "lift", c.descend_speed, 0.0),
        ]
        return seq + self._home(seq[-1][0])

    def push_path(self, start_xy: np.ndarray, end_xy: np.ndarray, state: EEPose
                  ) -> list[tuple[EEPose, str, float | None, float]]:
        """Closed gripper down at ``start_xy``, sweep along the table to ``end_xy``, lift, open, home."""
        c = self.config
        z = c.plane_z + c.push_z_m
        g, o = GRIPPER_CLOSED, GRIPPER_OPEN
        seq = [(state.with_gripper(g), "close", None, c.grip_dwell_s)]
        seq += self.transit(state.with_gripper(g), np.array([start_xy[0], start_xy[1], z + 0.03]), "above")
        seq += [
            (EEPose(start_xy[0], start_xy[1], z, g), "lower", c.descend_speed, 0.0),
            (EEPose(end_xy[0], end_xy[1], z, g), "sweep", c.push_speed, 0.0),
            (EEPose(end_xy[0], end_xy[1], z + 0.06, g), "lift", c.descend_speed, 0.0),
            (EEPose(end_xy[0], end_xy[1], z + 0.06, o), "open", None, c.grip_dwell_s),
        ]
        return seq + self._home(seq[-1][0])

    def push_to(self, p: np.ndarray, state: EEPose) -> list[tuple[EEPose, str, float | None, float]]:
        """Push sequence: sweep from where the gripper is to ``p``."""
        return self.push_path(np.array([state.x, state.y]), np.asarray(p[:2]), state)

    def hover_at(self, p: np.ndarray, state: EEPose) -> list[tuple[EEPose, str, float | None, float]]:
        """``move_to``: transit to ``hover_m`` above ``p`` (gripper unchanged)."""
        return self.transit(state, np.array([p[0], p[1], float(p[2]) + self.config.hover_m]), "hover")

    # -------------------------------------------------------------------------------------------- actions
    def plan(self, action: Action, state: EEPose, t_obs: float, decision: int = -1,
             depth: np.ndarray | None = None, state_obs: EEPose | None = None,
             holding: bool | None = None) -> list[Waypoint] | NoAnswer:
        """Waypoints for one action, or :class:`NoAnswer` (a reason to show the model) when it cannot be done.

        Args:
            action: the parsed action.
            state: the current end-effector pose (measured gripper).
            t_obs: capture time of the frame the decision was made on.
            decision: decision index (for logs/recording).
            depth: the frame's depth image, if any.
            state_obs: the pose when the frame was captured: relative ``move`` actions start from it (the model
                saw the robot there); default ``state``.
            holding: whether the gripper holds an object, when the robot can tell (``None``: inferred from the
                gripper and the last grasp/place).
        """
        c = self.config
        if isinstance(action, DoneAction):
            return []
        if isinstance(action, MoveAction):
            base = state_obs or state
            lim = c.max_move_cm / 100.0
            d = np.clip(np.array([action.dx_cm, action.dy_cm, action.dz_cm], dtype=np.float64) / 100.0, -lim, lim)
            target = state.with_xyz(base.xyz + d)
            seq = [(target, "move", None, 0.0)]
            if action.gripper is not None:
                g = GRIPPER_CLOSED if action.gripper == "close" else GRIPPER_OPEN
                seq.append((target.with_gripper(g), action.gripper, None, c.grip_dwell_s))
            return self.timed(seq, state, t_obs, decision)
        if isinstance(action, PointAction):
            hit = self.point_3d(action.x, action.y, depth)
            if isinstance(hit, NoAnswer):
                return hit
            p, _source = hit
            held = holding if holding is not None else (state.gripper >= 0.5 and self.held_bottom_offset is not None)
            if action.then == "grasp":
                if held:
                    return NoAnswer("cannot grasp: already holding an object; place it first")
                seq = self.grasp_at(p, state)
            elif action.then == "place":
                if not held and (holding is not None or state.gripper < 0.5):
                    return NoAnswer("not holding anything; grasp an object first")
                seq = self.place_at(p, state)
            elif action.then == "push":
                if held:
                    return NoAnswer("cannot push while holding an object; place it first")
                seq = self.push_to(p, state)
            else:
                seq = self.hover_at(p, state)
            return self.timed(seq, state, t_obs, decision)
        if isinstance(action, SkillAction):
            if self.skills is None:
                return NoAnswer(f"skill {action.name!r} is not available on this robot; use point or move actions")
            return self.skills.plan(action, state, t_obs, decision, self)  # type: ignore[attr-defined]
        return NoAnswer(f"unsupported action {action!r}")
