"""Fault injection: a model server that is slow, answers 500, garbage, truncated JSON or drops connections.

The robot must hold (stop moving) promptly — immediately after a failed request, and for a silent server once
the request timeout passes — and the bridge must resume by itself when the server recovers. The planner dying
silently is caught by the watchdog within ``watchdog_s``.
"""

from __future__ import annotations

import itertools
import threading
import time

import numpy as np
import pytest

from robot_bridge.executor import Executor
from robot_bridge.pose import EEPose, Waypoint
from robot_bridge.safety import Safety, SafetyConfig
from tests.bridge.conftest import BridgeFactory
from tests.bridge.fakes import WORKSPACE, FakeRobot
from tests.helpers.fake_openai_server import FakeOpenAIServer

pytestmark = pytest.mark.network

TIMEOUT_S, WATCHDOG_S, TICK_S = 0.6, 0.5, 1 / 30


def _moves(robot: FakeRobot, t0: float, t1: float | None = None) -> list[float]:
    """Times (monotonic) after ``t0`` (and before ``t1``) at which the commanded pose changed."""
    out = []
    with robot.lock:
        acts, times = list(robot.actions), list(robot.action_times)
    for a, b, t in zip(acts, acts[1:], times[1:], strict=False):
        if t >= t0 and (t1 is None or t < t1) and any(abs(a[k] - b[k]) > 1e-9 for k in a):
            out.append(t)
    return out


@pytest.mark.parametrize("mode", ["slow", "error500", "garbage", "truncated", "drop"])
def test_robot_holds_then_recovers(make_bridge: BridgeFactory, mode: str) -> None:
    signs = itertools.cycle([1, -1])
    srv = FakeOpenAIServer(
        responder=lambda r: f'{{"action": {{"type": "move", "dx_cm": {8 * next(signs)}, "dy_cm": 0}}}}')
    robot = FakeRobot()
    with srv:
        # asynchronous planning (each new plan replaces the running one), so a fault arrives mid-motion
        b = make_bridge(srv.url, robot=robot, planner={"rate_hz": 10.0, "request_timeout_s": TIMEOUT_S,
                                                       "requeue_fraction": 1.0},
                        safety={"watchdog_s": WATCHDOG_S, "max_invalid": 1000, "max_speed_m_s": 0.3})
        runner = threading.Thread(target=b.run_episode, daemon=True)
        runner.start()
        time.sleep(1.0)
        assert len(_moves(robot, 0.0)) > 10, "the robot should be moving before the fault"
        srv.latency_s = 2.0 if mode == "slow" else 0.0
        srv.mode = mode
        t_fault = time.monotonic()
        time.sleep(2.5)
        t_first = min(r["time"] for r in srv.chat_requests if r["time"] > t_fault)
        # failing answers clear the plan at once; a silent server is given up at the request timeout
        bound = t_first + (TIMEOUT_S if mode == "slow" else 0.0) + 3 * TICK_S + 0.05
        late = [t for t in _moves(robot, t_fault) if t > bound]
        assert late == [], f"{mode}: robot still moved {late[-1] - t_first:.2f} s after the first failed request"
        assert b.executor is not None and b.executor.last is not None
        assert b.executor.last.mode.startswith("hold")
        assert b.safety is not None and b.safety.events.snapshot().get("request_error", 0) >= 1
        if mode == "slow":  # the hold reason names the flag that helps
            details = [d for _, name, d in b.safety.events.recent if name == "request_error"]
            assert any(d.startswith(f"no answer within --request-timeout {TIMEOUT_S:g} s") for d in details), details
        assert not b.safety.estop.latched
        srv.latency_s, srv.mode = 0.0, "ok"
        t_ok = time.monotonic()
        time.sleep(2.0)
        assert len(_moves(robot, t_ok)) > 5, f"{mode}: the bridge did not resume after the server recovered"
        assert b.planner is not None
        b.planner.stop()
        runner.join(5.0)
        assert not runner.is_alive()


def test_watchdog_holds_when_the_planner_goes_silent() -> None:
    robot = FakeRobot()
    safety = Safety(SafetyConfig(watchdog_s=WATCHDOG_S, max_speed_m_s=0.05), control_hz=30.0, workspace=WORKSPACE)
    ex = Executor(robot, safety, rate_hz=30.0)
    now = time.monotonic()
    ex.submit([Waypoint(EEPose(0.2, -0.15, 0.05), now, 30.0)])  # a long plan with a long TTL
    safety.watchdog.feed()
    t_last_feed = time.monotonic()
    with ex:
        time.sleep(1.2)
    moves = _moves(robot, 0.0)
    assert moves and moves[0] < t_last_feed + 0.2, "it moved while the planner was alive"
    assert moves[-1] <= t_last_feed + WATCHDOG_S + 2 * TICK_S, "it kept moving after the watchdog expired"
    assert safety.events.snapshot().get("queue_cleared", 0) == 1
    assert ex.stats.modes["hold:watchdog"] > 10
    assert not np.allclose(robot.pose[:3], [0.2, -0.15, 0.05])
