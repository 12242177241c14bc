"""The planner loop (1–3 Hz): newest frame → prompt → model server → parse → safety → executor queue.

One decision:

1. **capture**: the newest camera frame, refused when stale (→ hold), with the robot state at that moment;
2. **encode**: the step's :class:`~dppo_embodied.episode.StepObservation` (the frame, the instruction, the feedback
   of the last action, the history ``"{command} -> {feedback}"`` of the executed actions and the robot's skills) is
   rendered by :func:`dppo_embodied.episode.render_step`, the renderer the simulated envs train and evaluate with,
   in the checkpoint's step prompt style; its OpenAI form carries the frame as a JPEG data URL (``max_side`` px,
   quality ``jpeg_quality``), static system prompt and text first and the image last (vLLM prefix caching);
3. **request**: sent with the core :class:`~dppo_embodied.client.ChatClient` under a hard timeout; while it is in
   flight the planner covers the watchdog up to that timeout; a failure or timeout → hold;
4. **parse**: :func:`dppo_embodied.actions.parse_action` (point / move / skill / done); an invalid or infeasible
   action is not executed, is counted (too many → stop), and its reason goes back to the model as feedback;
5. **plan**: :class:`~robot_bridge.targets.MotionPlanner` turns the action into timed waypoints, which replace
   the executor's queue; the next decision starts when at most ``requeue_fraction`` of the plan is left (0 by
   default: each primitive completes first). The executor never waits for the model: it holds.

Timings of every step are kept per decision (the overhead benchmark measures steps 1, 2, 4, 5 and the request
building of step 3, server time excluded).
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dppo_embodied.actions import Action, DoneAction, action_to_json, parse_action
from dppo_embodied.client import ChatClient
from dppo_embodied.conversation import Conversation
from dppo_embodied.episode import StepObservation, history_entry, render_step
from dppo_embodied.errors import ClientError, DppoError
from dppo_embodied.parsing import NoAnswer
from dppo_embodied.prompts import PromptStyle
from robot_bridge.cameras.base import Frame, LatestFrame, StaleFrameError
from robot_bridge.executor import Executor
from robot_bridge.planner_config import PlannerConfig
from robot_bridge.pose import EEPose, Waypoint
from robot_bridge.safety import Safety
from robot_bridge.targets import MotionPlanner

logger = logging.getLogger(__name__)

__all__ = ["DECLARED_DONE", "EXECUTED", "EXECUTING", "STOPPED", "Decision", "EpisodeResult", "Planner",
           "PlannerConfig", "jpeg_from_messages"]

#: Feedback of an executed action at the next decision: the executor finished its plan, the safety layer stopped
#: it first (a TTL expiry or a cleared queue), or it still runs (``requeue_fraction > 0``). ``done`` says what the
#: simulated envs say.
EXECUTED = "Last action succeeded: executed on the robot"
STOPPED = "Last action failed: the robot stopped before it finished"
EXECUTING = "Last action is still executing"
DECLARED_DONE = "Last action succeeded: declared the task done"
_STOPS = ("ttl_expired", "queue_cleared")


@dataclass
class Decision:
    """Everything about one decision (also what the recorder stores).

    Attributes:
        index: decision number in the episode (0-based).
        status: ``ok``, ``done``, ``invalid`` (unparsable), ``refused`` (parsed but not executable now, e.g.
            grasp while holding), ``request_error``, ``stale_frame``, ``robot_error``, ``encode_error``.
        t_obs: capture time of the frame (``time.monotonic()``).
        frame: the frame sent (``None`` when none was fresh).
        state: end-effector pose at capture.
        prompt: the user text sent.
        conversation: what the model was shown (:func:`dppo_embodied.episode.render_step`).
        raw_text: the model's reply.
        action: the parsed action.
        error: the parse/request/safety reason.
        waypoints: the plan given to the executor.
        timings_ms: per step: ``capture``, ``encode``, ``request``, ``parse``, ``plan``, ``total``,
            ``overhead`` (total minus request).
        jpeg: the exact JPEG sent (kept when the planner's ``keep_jpeg`` is on, e.g. for recording).
    """

    index: int
    status: str = "ok"
    t_obs: float = 0.0
    frame: Frame | None = None
    state: EEPose | None = None
    prompt: str = ""
    conversation: Conversation | None = None
    raw_text: str = ""
    action: Action | None = None
    error: str = ""
    waypoints: list[Waypoint] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    jpeg: bytes | None = None

    @property
    def command_json(self) -> str:
        """The parsed action as canonical JSON (``""`` when none)."""
        return action_to_json(self.action) if self.action is not None else ""


@dataclass
class EpisodeResult:
    """Outcome of :meth:`Planner.run`."""

    status: str
    steps: int
    elapsed_s: float
    success: bool | None = None
    decisions: list[Decision] = field(default_factory=list)


def jpeg_from_messages(messages: list[dict[str, Any]]) -> bytes | None:
    """The first image's bytes from OpenAI messages built with data URLs (what the model received)."""
    for m in messages:
        content = m.get("content")
        if isinstance(content, list):
            for p in content:
                if isinstance(p, dict) and p.get("type") == "image_url":
                    head, _, payload = p.get("image_url", {}).get("url", "").partition(",")
                    if head.endswith(";base64"):
                        return base64.b64decode(payload)
    return None


class Planner:
    """Closed-loop decision maker.

    Args:
        client: chat client of the model server (create it with ``max_retries=0``: the loop itself retries).
        frames: the latest-frame camera thread.
        robot: the robot facade (state, calibration, success check).
        executor: the action player.
        safety: the safety layer.
        motion: action → waypoints.
        instruction: the task, as shown to the model.
        config: loop settings.
        skills: the robot's skills: the allowlist given to the parser, listed to the model.
        on_decision: called with each :class:`Decision` (the recorder, the status line).
        keep_jpeg: keep the JPEG bytes sent in :attr:`Decision.jpeg` (recording).
        style: the served checkpoint's step prompt style (:mod:`dppo_embodied.prompts`).
    """

    def __init__(self, client: ChatClient, frames: LatestFrame, robot: Any, executor: Executor, safety: Safety,
                 motion: MotionPlanner, instruction: str, config: PlannerConfig | None = None,
                 skills: Sequence[str] = (), on_decision: Callable[[Decision], None] | None = None,
                 keep_jpeg: bool = False, style: PromptStyle = "full") -> None:
        self.client, self.frames, self.robot = client, frames, robot
        self.executor, self.safety, self.motion = executor, safety, motion
        self.instruction, self.style = instruction, style
        self.config = config or PlannerConfig()
        self.skills = tuple(skills)
        self.on_decision, self.keep_jpeg = on_decision, keep_jpeg
        self.feedback = ""
        #: history lines "{command} -> {feedback}" (dppo_embodied.episode.history_entry), oldest first
        self.history: deque[str] = deque(maxlen=self.config.history)
        self._running: tuple[str, str, int] | None = None  # (command, reply, stops so far) of the plan running
        self.index = 0
        self.request_latency_ms: deque[float] = deque(maxlen=200)
        self.decision_times: deque[float] = deque(maxlen=50)
        self._stop = threading.Event()

    # ---------------------------------------------------------------------------------------------- steps
    def _note(self, command: str | None, reply: str, feedback: str) -> None:
        """Record what happened to an action: the feedback of the next step and a history line."""
        self.feedback = feedback
        if self.history.maxlen:
            self.history.append(history_entry(command, reply, feedback))

    def _stops(self) -> int:
        counts = self.safety.events.snapshot()
        return sum(counts.get(k, 0) for k in _STOPS)

    def observation(self, image: Any) -> StepObservation:
        """What the model sees now, with ``image`` (the frame) as the camera image; the plan handed to the
        executor at the last decision gets its feedback here (:data:`EXECUTED`, :data:`STOPPED`, :data:`EXECUTING`).
        """
        if self._running is not None:
            command, reply, stops = self._running
            self._running = None
            running, stopped = self.executor.queue_len > 0, self._stops() > stops
            self._note(command, reply, EXECUTING if running else STOPPED if stopped else EXECUTED)
        return StepObservation(images=(image,), instruction=self.instruction, feedback=self.feedback,
                               history=tuple(self.history), skills=self.skills)

    def _hold(self, d: Decision, status: str, reason: str) -> Decision:
        d.status, d.error = status, reason
        self.executor.clear(status)
        self.safety.events.note(status, reason[:300])
        return d

    def decide(self) -> Decision:
        """Make one decision (steps 1–5); never raises on model or server faults (they become holds)."""
        cfg = self.config
        d = Decision(index=self.index)
        self.index += 1
        t0 = time.perf_counter()
        self.safety.watchdog.feed()
        # 1. capture
        try:
            frame = self.frames.read_latest(self.safety.config.stale_frame_s)
        except StaleFrameError as e:
            d.timings_ms["capture"] = (time.perf_counter() - t0) * 1000
            return self._finish(self._hold(d, "stale_frame", str(e)), t0)
        d.frame, d.t_obs = frame, frame.t_capture
        try:
            d.state = EEPose.from_observation(self.robot.get_state())
        except Exception as e:  # the executor latches the e-stop on repeated robot failures
            return self._finish(self._hold(d, "robot_error", f"{type(e).__name__}: {e}"), t0)
        t1 = time.perf_counter()
        d.timings_ms["capture"] = (t1 - t0) * 1000
        # 2. encode (+ prompt and request body building)
        d.conversation = conv = render_step(self.observation(frame.image), self.style)
        d.prompt = conv.text
        try:
            messages = conv.openai_messages(image_quality=cfg.jpeg_quality, max_side=cfg.max_side)
        except DppoError as e:  # a malformed frame (wrong dtype/shape) from a camera driver
            return self._finish(self._hold(d, "encode_error", str(e)), t0)
        t2 = time.perf_counter()
        d.timings_ms["encode"] = (t2 - t1) * 1000
        if self.keep_jpeg:
            d.jpeg = jpeg_from_messages(messages)
        # 3. request (the watchdog is covered until the request's own timeout)
        self.safety.watchdog.feed(until=time.monotonic() + cfg.request_timeout_s + 0.05)
        try:
            reply = self.client.chat(messages, max_tokens=cfg.max_tokens, temperature=cfg.temperature,
                                     timeout_s=cfg.request_timeout_s, deadline_s=cfg.request_timeout_s)
            d.raw_text = reply.text
        except (ClientError, DppoError) as e:
            d.timings_ms["request"] = (time.perf_counter() - t2) * 1000
            reason = str(e)
            if "timed out" in reason:  # say which flag helps, before the client's own words
                reason = (f"no answer within --request-timeout {cfg.request_timeout_s:g} s (raise it, e.g. "
                          f"--request-timeout 30, or lower --max-tokens): {reason}")
            return self._finish(self._hold(d, "request_error", reason), t0)
        finally:
            self.safety.watchdog.feed()
        t3 = time.perf_counter()
        d.timings_ms["request"] = (t3 - t2) * 1000
        self.request_latency_ms.append(d.timings_ms["request"])
        self._post(d, frame)
        return self._finish(d, t0)

    def _post(self, d: Decision, frame: Frame) -> None:
        """Steps 4–5 (parse, safety/plan, queue), timed separately."""
        t3 = time.perf_counter()
        action = parse_action(d.raw_text, image_size=frame.size, skills=self.skills or None)
        t4 = time.perf_counter()
        d.timings_ms["parse"] = (t4 - t3) * 1000
        if isinstance(action, NoAnswer):  # not executed; a plan already running goes on within its TTL
            self._note(None, d.raw_text, f"Last action is invalid: {action.reason}")
            d.status, d.error = "invalid", action.reason
            self.safety.note_invalid(action.reason)
            d.timings_ms["plan"] = (time.perf_counter() - t4) * 1000
            return
        d.action = action
        if isinstance(action, DoneAction):
            d.status = "done"
            self._note(action_to_json(action), d.raw_text, DECLARED_DONE)
            d.timings_ms["plan"] = (time.perf_counter() - t4) * 1000
            return
        state_now = d.state
        try:
            state_now = EEPose.from_observation(self.robot.get_state())
        except Exception as e:
            logger.debug("state read after the request failed (%s); planning from the capture state", e)
        assert d.state is not None and state_now is not None
        holding_fn = getattr(self.robot, "holding", None)
        holding = holding_fn() if callable(holding_fn) else None
        plan = self.motion.plan(action, state_now, d.t_obs, d.index, depth=frame.depth, state_obs=d.state,
                                holding=holding)
        if isinstance(plan, NoAnswer):
            self._note(action_to_json(action), d.raw_text, f"Last action is invalid: {plan.reason}")
            d.status, d.error = "refused", plan.reason
            self.safety.note_invalid(plan.reason)
        else:
            d.waypoints = plan
            self.executor.submit(plan)
            self._running = (action_to_json(action), d.raw_text, self._stops())  # feedback: at the next decision
        d.timings_ms["plan"] = (time.perf_counter() - t4) * 1000

    def _finish(self, d: Decision, t0: float) -> Decision:
        d.timings_ms["total"] = (time.perf_counter() - t0) * 1000
        d.timings_ms["overhead"] = d.timings_ms["total"] - d.timings_ms.get("request", 0.0)
        self.decision_times.append(time.monotonic())
        if self.on_decision is not None:
            try:
                self.on_decision(d)
            except Exception as e:  # recording/status problems must not stop the robot loop
                logger.warning("decision callback failed: %s", e)
        return d

    # ----------------------------------------------------------------------------------------------- loop
    @property
    def decision_rate_hz(self) -> float:
        """Decisions per second over the recent window."""
        t = self.decision_times
        return (len(t) - 1) / (t[-1] - t[0]) if len(t) >= 2 and t[-1] > t[0] else 0.0

    def request_p50_ms(self) -> float:
        """Median request latency of recent decisions (ms)."""
        return float(np.median(self.request_latency_ms)) if self.request_latency_ms else 0.0

    def stop(self) -> None:
        """Ask :meth:`run` to return after the current decision."""
        self._stop.set()

    def _wait_plan(self, d: Decision, fraction: float) -> None:
        """Keep the watchdog fed while the plan executes, until at most ``fraction`` of it is left (0 = done),
        the motion is stopped, or its TTL ends."""
        if not d.waypoints or fraction >= 1.0:
            return
        t_end = d.waypoints[-1].t_obs + d.waypoints[-1].ttl_s
        while not self._stop.is_set() and time.monotonic() < t_end:
            self.safety.watchdog.feed()
            if fraction <= 0.0:
                if self.executor.wait_idle(0.05):
                    return
            elif self.executor.remaining_fraction() <= fraction or self._stop.wait(0.02):
                return
            if self.safety.may_move() not in (None, "watchdog"):
                return

    def run(self, max_steps: int | None = None) -> EpisodeResult:
        """Decide at ``rate_hz`` until done, stopped, e-stopped, out of steps or out of time."""
        cfg = self.config
        limit = max_steps if max_steps is not None else cfg.max_steps
        period = 1.0 / cfg.rate_hz
        t_start = time.monotonic()
        decisions: list[Decision] = []
        status = "running"
        max_s = self.safety.config.max_episode_s
        self._stop.clear()
        while True:
            if self._stop.is_set():
                status = "interrupted"
                break
            if self.safety.estopped:  # latched, or pressed during this episode and reset since
                status = f"estop: {self.safety.estop.last_reason}"
                break
            if self.safety.stopped:
                status = f"stopped: {self.safety.stopped_reason}"
                break
            if limit is not None and len(decisions) >= limit:
                status = "max_steps"
                break
            if max_s is not None and time.monotonic() - t_start > max_s:
                self.safety.stop(f"episode exceeded {max_s:g} s")
                continue
            t_cycle = time.monotonic()
            d = self.decide()
            decisions.append(d)
            if d.status == "done":
                status = "done"
                break
            if d.status == "ok":
                self._wait_plan(d, 0.0 if cfg.sync else cfg.requeue_fraction)
            wake = t_cycle + period
            while not self._stop.is_set():
                remaining = wake - time.monotonic()
                if remaining <= 0:
                    break
                self.safety.watchdog.feed(until=wake + self.safety.config.watchdog_s)
                self._stop.wait(min(remaining, 0.1))
        if status == "done":  # let the last plan finish (watchdog fed) before judging success
            t_end = time.monotonic() + 10.0
            while time.monotonic() < t_end and self.safety.may_move() in (None, "watchdog"):
                self.safety.watchdog.feed()
                if self.executor.wait_idle(0.05):
                    break
        success = None
        is_success = getattr(self.robot, "is_success", None)
        task = getattr(self.robot, "task", None)
        if callable(is_success) and task is not None:
            try:
                success = bool(is_success())
            except Exception as e:
                logger.debug("success check unavailable: %s", e)
        return EpisodeResult(status, len(decisions), time.monotonic() - t_start, success, decisions)
