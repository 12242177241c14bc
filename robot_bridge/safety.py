"""The safety layer: every command passes through it, whatever the model said.

All protections are on by default (robotics reference, section 12):

* **limits**: workspace box (metres), joint limits, per-tick change caps (``max_relative_target`` style) on
  position, gripper and joints, so velocity is bounded and motion is interpolated;
* **time**: action time-to-live, stale-frame hold, watchdog (no planner check-in for ``watchdog_s`` → hold),
  request timeout → hold, maximum episode duration;
* **stops**: an e-stop latch (signal, key, HTTP endpoint) that only an explicit reset clears; too many invalid
  model outputs → stop;
* **modes**: dry-run/shadow (compute and log, never send), slow mode (speed scale, e.g. 0.25).

The e-stop's sources (terminal keys, signals, an HTTP endpoint on 127.0.0.1) live in :mod:`robot_bridge.estop`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dppo_embodied.errors import ConfigError
from robot_bridge.pose import EEPose

logger = logging.getLogger(__name__)


@dataclass
class SafetyConfig:
    """Safety limits. Units: metres, seconds, gripper in [0, 1]; joint units are the robot's (LeRobot: degrees).

    Attributes:
        workspace_min: lower corner of the allowed end-effector box (world frame); ``None`` = the robot's own
            ``workspace`` (the sim twin has one), else the bridge refuses to move.
        workspace_max: upper corner of the box.
        max_speed_m_s: end-effector speed cap; per tick it is ``max_speed_m_s / control_hz``.
        max_gripper_per_s: gripper change cap per second (1.0 = full stroke in one second).
        joint_limits: joint key → ``[low, high]`` for joint-space robots.
        max_joint_step: per-tick joint change cap (LeRobot ``max_relative_target``; ``None`` = off, not advised).
        max_move_cm: one ``move`` action is clipped to this many centimetres per axis.
        action_ttl_s: waypoints expire this long after their frame was captured (plus their planned duration).
        stale_frame_s: frames older than this are refused (the robot holds).
        watchdog_s: the planner must check in this often (it covers its own in-flight requests up to the request
            timeout); otherwise the robot holds.
        max_invalid: this many invalid model outputs in an episode → stop.
        max_episode_s: hard cap on an episode's duration (``None`` = none).
        dry_run: shadow mode: everything runs and is logged/recorded, but no action is sent to the robot.
        slow_scale: multiplies every speed cap (0 < s <= 1; 0.25 for first runs).
        confirm_first_motion: wait for the operator (Enter) before the first motion.
    """

    workspace_min: tuple[float, float, float] | None = None
    workspace_max: tuple[float, float, float] | None = None
    max_speed_m_s: float = 0.15
    max_gripper_per_s: float = 2.0
    joint_limits: dict[str, tuple[float, float]] = field(default_factory=dict)
    max_joint_step: float | None = 5.0
    max_move_cm: float = 5.0
    action_ttl_s: float = 1.5
    stale_frame_s: float = 0.5
    watchdog_s: float = 0.5
    max_invalid: int = 10
    max_episode_s: float | None = 600.0
    dry_run: bool = False
    slow_scale: float = 1.0
    confirm_first_motion: bool = False

    def __post_init__(self) -> None:
        for name in ("max_speed_m_s", "max_gripper_per_s", "max_move_cm", "action_ttl_s", "stale_frame_s",
                     "watchdog_s"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ConfigError(f"safety.{name} must be a positive number, got {v!r}")
        if not 0 < self.slow_scale <= 1:
            raise ConfigError(f"safety.slow_scale must be in (0, 1] (e.g. 0.25 for slow mode), got {self.slow_scale}")
        if not isinstance(self.max_invalid, int) or self.max_invalid < 1:
            raise ConfigError(f"safety.max_invalid must be a positive integer, got {self.max_invalid!r}")
        if self.max_joint_step is not None and self.max_joint_step <= 0:
            raise ConfigError(f"safety.max_joint_step must be positive or null, got {self.max_joint_step}")
        if (self.workspace_min is None) != (self.workspace_max is None):
            raise ConfigError("give both safety.workspace_min and safety.workspace_max, or neither")
        if self.workspace_min is not None:
            self.workspace_min = tuple(float(v) for v in self.workspace_min)  # type: ignore[assignment]
            self.workspace_max = tuple(float(v) for v in self.workspace_max)  # type: ignore[arg-type,assignment]
            if len(self.workspace_min) != 3 or len(self.workspace_max) != 3 or any(  # type: ignore[arg-type]
                    lo >= hi for lo, hi in zip(self.workspace_min, self.workspace_max, strict=True)):  # type: ignore[arg-type]
                raise ConfigError(f"safety workspace must be 3 values each with min < max, got "
                                  f"{self.workspace_min} .. {self.workspace_max}")
        for k, lim in self.joint_limits.items():
            if len(lim) != 2 or lim[0] >= lim[1]:
                raise ConfigError(f"safety.joint_limits[{k!r}] must be [low, high] with low < high, got {lim}")


class SafetyEvents:
    """Thread-safe counters and a short history of safety events (hold reasons, clips, stops)."""

    def __init__(self, history: int = 200, log_every_s: float = 1.0) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.recent: deque[tuple[float, str, str]] = deque(maxlen=history)
        self._last_log: dict[str, float] = {}
        self.log_every_s = log_every_s

    def note(self, name: str, detail: str = "") -> None:
        """Count an event (logged at most once per ``log_every_s`` per name)."""
        now = time.monotonic()
        with self._lock:
            self.counts[name] += 1
            self.recent.append((now, name, detail))
            last = self._last_log.get(name, -math.inf)
            if now - last < self.log_every_s:
                return
            self._last_log[name] = now
        logger.warning("safety: %s%s", name, f" ({detail})" if detail else "")

    def snapshot(self) -> dict[str, int]:
        """A copy of the counters."""
        with self._lock:
            return dict(self.counts)

    def total(self) -> int:
        """Number of events so far."""
        with self._lock:
            return sum(self.counts.values())


class EStop:
    """A latching emergency stop: once triggered, only :meth:`reset` clears it.

    The executor sends every command inside :meth:`gate` after checking the latch; :meth:`trigger` waits (at most
    :attr:`GATE_WAIT_S`) for a command being sent at that moment, so once it returns no motion command starts.
    """

    #: how long :meth:`trigger` waits for a command already being sent (a hung robot driver must not block it)
    GATE_WAIT_S = 0.5

    def __init__(self) -> None:
        self._latched = threading.Event()
        self._lock = threading.Lock()
        self._gate = threading.RLock()
        self.reason: str | None = None
        self.source: str | None = None
        self.t_latched: float | None = None
        self.count = 0
        #: the reason of the latest stop, kept after a reset (episode results and exit messages name it)
        self.last_reason: str | None = None

    @property
    def latched(self) -> bool:
        """Whether the stop is engaged."""
        return self._latched.is_set()

    def trigger(self, reason: str, source: str = "api") -> None:
        """Engage the stop (idempotent: the first reason is kept until reset)."""
        with self._lock:
            if not self._latched.is_set():
                self.reason, self.source, self.t_latched = reason, source, time.monotonic()
                self.last_reason = reason
                self.count += 1
                self._latched.set()
                logger.error("E-STOP latched by %s: %s (reset explicitly to resume)", source, reason)
        if self._gate.acquire(timeout=self.GATE_WAIT_S):  # a command checked before the latch is out now
            self._gate.release()
        else:
            logger.error("e-stop: a robot command has been in flight for over %.1f s", self.GATE_WAIT_S)

    def gate(self) -> threading.RLock:
        """Hold it around "check the latch, then send one command" (the executor does)."""
        return self._gate

    def reset(self, source: str = "api") -> bool:
        """Clear the stop; returns whether it was engaged."""
        with self._lock:
            was = self._latched.is_set()
            self._latched.clear()
            if was:
                logger.warning("e-stop reset by %s (was: %s)", source, self.reason)
            self.reason = self.source = None
            self.t_latched = None
            return was

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the stop is engaged (or the timeout); returns whether it is."""
        return self._latched.wait(timeout_s)


class Watchdog:
    """Deadline that the planner must keep pushing forward; once passed, the executor holds.

    :meth:`feed` moves the deadline to ``now + timeout_s`` (or a later ``until``, e.g. the end of an in-flight
    request's timeout). :meth:`expired` tells the executor to hold.
    """

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._deadline = -math.inf
        self._lock = threading.Lock()

    def feed(self, until: float | None = None) -> None:
        """Check in: alive until ``max(now + timeout_s, until)``."""
        d = time.monotonic() + self.timeout_s
        if until is not None:
            d = max(d, until)
        with self._lock:
            self._deadline = d

    def starve(self) -> None:
        """Expire now (e.g. the planner stopped)."""
        with self._lock:
            self._deadline = -math.inf

    def expired(self, now: float | None = None) -> bool:
        """Whether the deadline has passed."""
        with self._lock:
            return (time.monotonic() if now is None else now) > self._deadline

    @property
    def deadline(self) -> float:
        """The current deadline (``time.monotonic()`` seconds)."""
        with self._lock:
            return self._deadline


class Safety:
    """Limits, stops and counters shared by the planner and the executor.

    Args:
        config: the limits.
        control_hz: executor rate (turns speeds into per-tick caps).
        workspace: ``(min_xyz, max_xyz)`` used when the config gives none (e.g. the robot's ``workspace``).
    """

    def __init__(self, config: SafetyConfig, control_hz: float = 30.0,
                 workspace: tuple[Any, Any] | None = None) -> None:
        self.config = config
        self.control_hz = float(control_hz)
        if config.workspace_min is not None:
            workspace = (config.workspace_min, config.workspace_max)
        self.workspace: tuple[np.ndarray, np.ndarray] | None = None
        if workspace is not None:
            lo, hi = (np.asarray(w, dtype=np.float64).reshape(3) for w in workspace)
            if np.any(lo >= hi) or not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
                raise ConfigError(f"invalid workspace {lo} .. {hi}: need finite min < max on every axis")
            self.workspace = (lo, hi)
        self.estop = EStop()
        self.events = SafetyEvents()
        self.watchdog = Watchdog(config.watchdog_s)
        self.invalid_count = 0
        self.stopped_reason: str | None = None
        self._presses = 0  # e-stop presses before this episode
        self._lock = threading.Lock()

    # ----------------------------------------------------------------------------------------- limits
    @property
    def step_m(self) -> float:
        """Largest end-effector move per control tick (metres), slow mode included."""
        return self.config.max_speed_m_s * self.config.slow_scale / self.control_hz

    @property
    def gripper_step(self) -> float:
        """Largest gripper change per control tick."""
        return self.config.max_gripper_per_s * self.config.slow_scale / self.control_hz

    def clamp_workspace(self, p: np.ndarray) -> tuple[np.ndarray, bool]:
        """Clamp a position into the workspace box; returns ``(position, was_clipped)``."""
        if self.workspace is None:
            return p, False
        q = np.clip(p, self.workspace[0], self.workspace[1])
        return q, bool(np.any(np.abs(q - p) > 1e-9))

    def safe_ee(self, target: EEPose, current: EEPose, speed_m_s: float | None = None) -> EEPose:
        """The command actually allowed this tick toward ``target`` from ``current``.

        Non-finite targets hold ``current``; the target is clamped into the workspace, the step to at most
        :attr:`step_m` from ``current`` (straight-line interpolation; ``speed_m_s`` may only lower it) and the
        gripper to [0, 1] at :attr:`gripper_step` per tick. ``current`` must be the robot's exact measured pose
        (not a rounded copy): the cap holds for the command returned, up to float rounding.

        Raises:
            ConfigError: no workspace is known (give ``safety.workspace_min/max``).
        """
        if self.workspace is None:
            raise ConfigError("no workspace box: set safety.workspace_min/max (metres, robot base frame) or use a "
                              "robot that declares its workspace")
        if not current.is_finite():
            self.events.note("nonfinite_state", str(current))
            raise ConfigError(f"the robot reports a non-finite pose {current}; check its sensors")
        if not target.is_finite():
            self.events.note("nonfinite_target", str(target))
            return current
        cur = current.xyz
        goal, clipped = self.clamp_workspace(target.xyz)
        if clipped:
            self.events.note("workspace_clip", f"{np.round(target.xyz, 3).tolist()}")
        delta = goal - cur
        dist = float(np.linalg.norm(delta))
        step = self.step_m
        if speed_m_s is not None and math.isfinite(speed_m_s) and speed_m_s > 0:
            step = min(step, speed_m_s * self.config.slow_scale / self.control_hz)
        if dist > step:
            goal = cur + delta * (step / dist)
        # the segment cur -> goal lies in the box grown to contain cur: this clip only removes rounding, and never
        # jumps a robot that starts outside the box (it is led in at the capped speed)
        lo, hi = self.workspace
        goal = np.clip(goal, np.minimum(lo, cur), np.maximum(hi, cur))
        g_target = min(1.0, max(0.0, target.gripper))
        dg = g_target - current.gripper
        g = current.gripper + max(-self.gripper_step, min(self.gripper_step, dg))
        return EEPose(float(goal[0]), float(goal[1]), float(goal[2]), float(min(1.0, max(0.0, g))))

    def safe_joints(self, goal: dict[str, float], present: dict[str, float]) -> dict[str, float]:
        """Clamp a joint-space goal to the joint limits and the per-tick relative cap (LeRobot style).

        Non-finite goals keep the present value. Keys missing from ``present`` are sent clamped to limits only.
        """
        out: dict[str, float] = {}
        cap = self.config.max_joint_step
        if cap is not None:
            cap *= self.config.slow_scale
        for k, v in goal.items():
            p = present.get(k)
            v = float(v)
            if not math.isfinite(v):
                self.events.note("nonfinite_target", k)
                v = float(p) if p is not None else math.nan
                if not math.isfinite(v):
                    continue
            lim = self.config.joint_limits.get(k)
            if lim is not None and not lim[0] <= v <= lim[1]:
                self.events.note("joint_limit", f"{k}={v:.3g}")
                v = min(lim[1], max(lim[0], v))
            if cap is not None and p is not None and abs(v - p) > cap:
                v = p + math.copysign(cap, v - p)
            out[k] = v
        return out

    # ------------------------------------------------------------------------------------ stops, counters
    def note_invalid(self, reason: str) -> bool:
        """Count one invalid model output; returns True when the limit is reached (the episode stops)."""
        with self._lock:
            self.invalid_count += 1
            n = self.invalid_count
        self.events.note("invalid_output", reason[:120])
        if n >= self.config.max_invalid:
            self.stop(f"{n} invalid model outputs (limit {self.config.max_invalid})")
            return True
        return False

    def stop(self, reason: str) -> None:
        """End the episode (not the e-stop: a stop ends the run, the robot holds)."""
        with self._lock:
            if self.stopped_reason is None:
                self.stopped_reason = reason
                logger.warning("stopping: %s", reason)

    @property
    def stopped(self) -> bool:
        """Whether the episode was stopped."""
        return self.stopped_reason is not None

    def reset_episode(self) -> None:
        """New episode: clear the invalid counter and the stop reason, re-arm after an e-stop that was reset (not
        the latch itself)."""
        with self._lock:
            self.invalid_count = 0
            self.stopped_reason = None
            self._presses = self.estop.count

    @property
    def estopped(self) -> bool:
        """The e-stop is latched, or was pressed during this episode: a reset re-arms the *next* episode only, so
        a stop undone within one control tick still ends the episode."""
        return self.estop.latched or self.estop.count != self._presses

    def may_move(self, now: float | None = None) -> str | None:
        """``None`` when motion is allowed, else why the robot must hold (``"estop"``, ``"stopped"``, ...)."""
        if self.estopped:
            return "estop"
        if self.stopped:
            return "stopped"
        if self.watchdog.expired(now):
            return "watchdog"
        return None
