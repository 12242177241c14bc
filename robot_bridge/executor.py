"""The fixed-rate executor: plays the action queue on the robot at 30 Hz, through the safety layer.

Each tick (absolute schedule, never blocked by the model):

1. read the end-effector state;
2. drop expired waypoints (time-to-live from their frame's capture time);
3. if the e-stop is latched, the episode stopped, or the watchdog expired → clear the queue and **hold**;
4. if the queue is empty → **hold**: send the pose captured when holding began (never repeat the last delta);
5. else step toward the head waypoint: the safety layer clamps it to the workspace and caps the change per tick
   (straight-line interpolation at the speed limit); a reached waypoint dwells, then is popped;
6. send the command (unless dry-run) and log what was actually sent.

Statistics (tick periods, overruns, hold reasons) feed the status line and the jitter benchmark.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dppo_embodied.errors import SafetyError
from robot_bridge.pose import EEPose, Waypoint
from robot_bridge.safety import Safety

logger = logging.getLogger(__name__)


@dataclass
class TickResult:
    """What one tick did.

    Attributes:
        t: tick time (``time.monotonic()``).
        state: measured pose.
        command: pose commanded this tick (``None`` when nothing could be commanded).
        mode: ``"move"`` or ``"hold:<reason>"`` (``empty``, ``estop``, ``stopped``, ``watchdog``).
        sent: whether it was sent to the robot (``False`` in dry-run).
        waypoint: label of the waypoint being executed.
    """

    t: float
    state: EEPose | None
    command: EEPose | None
    mode: str
    sent: bool
    waypoint: str = ""


@dataclass
class ExecutorStats:
    """Executor counters."""

    ticks: int = 0
    sent: int = 0
    overruns: int = 0
    robot_errors: int = 0
    modes: Counter[str] = field(default_factory=Counter)
    periods: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))
    tick_cost: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))

    def jitter_ms(self, period_s: float, q: float = 99.0) -> float:
        """Percentile ``q`` of ``|period - nominal|`` in milliseconds (0 when there are no samples)."""
        if not self.periods:
            return 0.0
        return float(np.percentile(np.abs(np.asarray(self.periods) - period_s), q) * 1000.0)


def read_ee_state(robot: Any) -> EEPose:
    """The end-effector pose of a robot: ``get_state()`` when it has one (cheap, no rendering), else
    ``get_observation()``."""
    get_state = getattr(robot, "get_state", None)
    obs = get_state() if callable(get_state) else robot.get_observation()
    return EEPose.from_observation(obs)


class Executor:
    """Fixed-rate action player.

    Args:
        robot: a connected end-effector robot (``ee.x/ee.y/ee.z/gripper.pos``).
        safety: the safety layer (limits, e-stop, watchdog, dry-run).
        rate_hz: control rate.
        state_fn: reads the current pose (default :func:`read_ee_state`).
        max_robot_errors: consecutive robot read/send failures before the e-stop latches.
    """

    def __init__(self, robot: Any, safety: Safety, rate_hz: float = 30.0,
                 state_fn: Callable[[], EEPose] | None = None, max_robot_errors: int = 5) -> None:
        if rate_hz <= 0:
            raise ValueError(f"rate_hz must be positive, got {rate_hz}")
        self.robot, self.safety = robot, safety
        self.rate_hz, self.period_s = float(rate_hz), 1.0 / float(rate_hz)
        self.state_fn = state_fn or (lambda: read_ee_state(robot))
        self.max_robot_errors = max_robot_errors
        self.stats = ExecutorStats()
        self._queue: deque[Waypoint] = deque()
        self._plan_len = 0
        self._lock = threading.Lock()
        self._hold: EEPose | None = None
        self._cmd_gripper: float | None = None
        self._dwell_until: float | None = None
        self._errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._idle = threading.Event()
        self._idle.set()
        self.last: TickResult | None = None

    # --------------------------------------------------------------------------------------------- queue
    def submit(self, waypoints: Sequence[Waypoint], replace: bool = True) -> None:
        """Queue waypoints (replacing the current plan by default: the newest decision wins)."""
        with self._lock:
            if replace:
                self._queue.clear()
                self._dwell_until = None
            self._queue.extend(waypoints)
            self._plan_len = len(self._queue)
            if self._queue:
                self._idle.clear()

    def clear(self, reason: str = "") -> None:
        """Drop every queued waypoint (the robot holds)."""
        with self._lock:
            n = len(self._queue)
            self._queue.clear()
            self._dwell_until = None
            self._idle.set()
        if n and reason:
            self.safety.events.note("queue_cleared", f"{reason}: {n} waypoint(s)")

    def rebase(self) -> None:
        """Forget the hold pose and the last gripper command (after the robot was reset or moved by hand)."""
        with self._lock:
            self._hold = None
            self._cmd_gripper = None

    def remaining_fraction(self) -> float:
        """Share of the current plan still queued (0 when idle)."""
        with self._lock:
            return len(self._queue) / self._plan_len if self._plan_len and self._queue else 0.0

    @property
    def queue_len(self) -> int:
        """Waypoints waiting."""
        with self._lock:
            return len(self._queue)

    def wait_idle(self, timeout_s: float | None = None) -> bool:
        """Block until the queue is empty (synchronous step-and-wait mode); returns whether it is."""
        return self._idle.wait(timeout_s)

    # --------------------------------------------------------------------------------------------- ticks
    def _hold_command(self, state: EEPose) -> EEPose:
        if self._hold is None:
            g = self._cmd_gripper if self._cmd_gripper is not None else state.gripper
            self._hold = state.with_gripper(g)
        return self._hold

    def step(self, now: float | None = None) -> TickResult:
        """Run one control tick (the thread calls this; tests may call it directly)."""
        now = time.monotonic() if now is None else now
        self.stats.ticks += 1
        try:
            state = self.state_fn()
        except Exception as e:
            return self._robot_error("read", e, now)
        reason = self.safety.may_move(now)
        wp: Waypoint | None = None
        with self._lock:
            while self._queue and self._queue[0].expired(now):
                dropped = self._queue.popleft()
                self._dwell_until = None
                self.safety.events.note("ttl_expired", dropped.label)
            if reason is not None and self._queue:
                self._queue.clear()
                self._dwell_until = None
                self.safety.events.note("queue_cleared", reason)
            if reason is None and self._queue:
                wp = self._queue[0]
            if not self._queue:
                self._idle.set()
        if wp is None:
            command = self._hold_command(state)
            mode = f"hold:{reason or 'empty'}"
        else:
            self._hold = None
            # position from the measurement, gripper ramp from the last command (grippers may report 0/1 only)
            base = state if self._cmd_gripper is None else state.with_gripper(self._cmd_gripper)
            command = self.safety.safe_ee(wp.pose, base, wp.speed_m_s)
            mode = "move"
            self._advance(wp, state, command, now)
        sent = False
        with self.safety.estop.gate():  # an e-stop pressed since the check above turns this move into a hold
            if wp is not None and self.safety.estopped:
                command, mode = self._hold_command(state), "hold:estop"
            if not self.safety.config.dry_run:
                try:
                    self.robot.send_action(command.to_action())
                    sent = True
                    self.stats.sent += 1
                except Exception as e:
                    return self._robot_error("send", e, now)
        self._errors = 0
        self._cmd_gripper = command.gripper
        self.stats.modes[mode] += 1
        self.last = TickResult(now, state, command, mode, sent, wp.label if wp else "")
        return self.last

    def _advance(self, wp: Waypoint, state: EEPose, command: EEPose, now: float) -> None:
        """Pop the head waypoint once reached (position within tolerance, gripper command done) and dwelt."""
        goal, _ = self.safety.clamp_workspace(wp.pose.xyz)
        reached = (float(np.linalg.norm(goal - state.xyz)) <= wp.tolerance_m
                   and abs(command.gripper - min(1.0, max(0.0, wp.pose.gripper))) < 0.02)
        if not reached:
            return
        with self._lock:
            if not self._queue or self._queue[0] is not wp:
                return
            if wp.dwell_s > 0:
                if self._dwell_until is None:
                    self._dwell_until = now + wp.dwell_s
                    return
                if now < self._dwell_until:
                    return
            self._queue.popleft()
            self._dwell_until = None
            if not self._queue:
                self._idle.set()

    def _robot_error(self, what: str, e: Exception, now: float) -> TickResult:
        self._errors += 1
        self.stats.robot_errors += 1
        self.safety.events.note(f"robot_{what}_error", f"{type(e).__name__}: {e}")
        if self._errors >= self.max_robot_errors:
            self.safety.estop.trigger(f"{self._errors} consecutive robot {what} failures: {e}", source="executor")
        self.last = TickResult(now, None, None, f"hold:robot_{what}_error", False)
        return self.last

    # -------------------------------------------------------------------------------------------- thread
    def start(self) -> Executor:
        """Start the control thread."""
        if self._thread is not None:
            raise SafetyError("the executor is already running")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="executor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the control thread (after a final hold command). Idempotent."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5.0)
        self._thread = None

    @property
    def running(self) -> bool:
        """Whether the control thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> Executor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        period = self.period_s
        next_t = time.monotonic()
        last_start: float | None = None
        while not self._stop.is_set():
            now = time.monotonic()
            if last_start is not None:
                self.stats.periods.append(now - last_start)
            last_start = now
            try:
                self.step(now)
            except Exception as e:  # a bug must not leave the robot moving: latch the stop and keep holding
                logger.exception("executor tick failed")
                self.safety.estop.trigger(f"executor error: {type(e).__name__}: {e}", source="executor")
            self.stats.tick_cost.append(time.monotonic() - now)
            next_t += period
            remaining = next_t - time.monotonic()
            if remaining < 0:
                self.stats.overruns += 1
                if remaining < -period:  # fell far behind: re-anchor instead of bursting ticks
                    next_t = time.monotonic()
                continue
            self._stop.wait(remaining)
        # final hold so the last thing the robot received is "stay here"
        try:
            if self.last is not None and self.last.state is not None and not self.safety.config.dry_run:
                self.robot.send_action(self._hold_command(self.last.state).to_action())
        except Exception as e:
            logger.warning("final hold command failed: %s", e)
