"""Executor: hold when empty, capped interpolation, TTL, stops, dry-run, robot failures, the 30 Hz thread."""

from __future__ import annotations

import time

import numpy as np
import pytest

from robot_bridge.executor import Executor
from robot_bridge.pose import EEPose, Waypoint
from robot_bridge.robots import BridgeRobot
from robot_bridge.safety import Safety, SafetyConfig
from tests.bridge.fakes import HOME, WORKSPACE, FakeRobot


def setup(**kw: object) -> tuple[FakeRobot, Safety, Executor]:
    robot = FakeRobot()
    safety = Safety(SafetyConfig(**kw), control_hz=30.0, workspace=WORKSPACE)  # type: ignore[arg-type]
    safety.watchdog.feed(until=time.monotonic() + 3600)
    return robot, safety, Executor(robot, safety, rate_hz=30.0)


def test_hold_when_empty_sends_the_same_pose() -> None:
    robot, _, ex = setup()
    for _ in range(3):
        r = ex.step()
        assert r.mode == "hold:empty" and r.sent
    assert all(a == robot.actions[0] for a in robot.actions)
    assert robot.actions[0] == pytest.approx({"ee.x": HOME[0], "ee.y": HOME[1], "ee.z": HOME[2], "gripper.pos": 0.0})


def test_moves_with_capped_steps_then_pops_and_holds() -> None:
    robot, safety, ex = setup(max_speed_m_s=0.3)
    now = time.monotonic()
    ex.submit([Waypoint(EEPose(0.1, 0.15, 0.15, 0.0), now, 10.0, label="a")])
    xs = []
    for _ in range(20):
        r = ex.step()
        xs.append(robot.pose[0])
        if r.mode != "move":
            break
    steps = np.diff([HOME[0], *xs])
    assert np.all(steps <= safety.step_m + 1e-9)
    assert robot.pose[0] == pytest.approx(0.1) and ex.queue_len == 0
    assert ex.step().mode == "hold:empty" and ex.wait_idle(0)


def test_dwell_keeps_the_waypoint() -> None:
    robot, _, ex = setup(max_gripper_per_s=100.0)
    now = time.monotonic()
    ex.submit([Waypoint(EEPose(*HOME, 1.0), now, 10.0, label="close", dwell_s=0.2)])
    t = time.monotonic()
    ex.step(t)
    ex.step(t + 0.05)
    assert ex.queue_len == 1
    ex.step(t + 0.3)
    assert ex.queue_len == 0 and robot.pose[3] == 1.0


def test_expired_waypoints_are_dropped() -> None:
    robot, safety, ex = setup()
    old = time.monotonic() - 5.0
    ex.submit([Waypoint(EEPose(0.2, 0.0, 0.1), old, 1.5, label="late")])
    r = ex.step()
    assert r.mode == "hold:empty" and robot.pose[0] == HOME[0]
    assert safety.events.snapshot()["ttl_expired"] == 1


def test_estop_watchdog_and_stop_hold_and_clear() -> None:
    robot, safety, ex = setup()
    now = time.monotonic()
    ex.submit([Waypoint(EEPose(0.2, 0.0, 0.1), now, 10.0)])
    safety.estop.trigger("test")
    assert ex.step().mode == "hold:estop" and ex.queue_len == 0
    safety.estop.reset()
    ex.submit([Waypoint(EEPose(0.2, 0.0, 0.1), now, 10.0)])
    assert ex.step().mode == "hold:estop" and ex.queue_len == 0  # a reset re-arms the next episode only
    safety.reset_episode()
    ex.submit([Waypoint(EEPose(0.2, 0.0, 0.1), now, 10.0)])
    safety.watchdog.starve()
    assert ex.step().mode == "hold:watchdog" and ex.queue_len == 0
    safety.watchdog.feed(until=time.monotonic() + 10)
    safety.stop("done")
    ex.submit([Waypoint(EEPose(0.2, 0.0, 0.1), now, 10.0)])
    assert ex.step().mode == "hold:stopped"
    assert robot.pose[0] == pytest.approx(HOME[0])


def test_dry_run_never_sends() -> None:
    robot, _, ex = setup(dry_run=True)
    ex.submit([Waypoint(EEPose(0.1, 0.1, 0.1), time.monotonic(), 10.0)])
    r = ex.step()
    assert r.mode == "move" and not r.sent and r.command is not None and robot.actions == []


def test_repeated_robot_failures_latch_the_estop() -> None:
    robot, safety, ex = setup()
    robot.fail_sends = 5
    for _ in range(5):
        assert ex.step().mode == "hold:robot_send_error"
    assert safety.estop.latched and "send" in (safety.estop.reason or "")


def test_gripper_ramps_from_the_last_command_on_binary_grippers() -> None:
    class Binary(FakeRobot):
        def get_state(self) -> dict[str, float]:
            s = super().get_state()
            s["gripper.pos"] = 1.0 if s["gripper.pos"] >= 0.5 else 0.0
            return s

    robot = Binary()
    safety = Safety(SafetyConfig(), control_hz=30.0, workspace=WORKSPACE)
    safety.watchdog.feed(until=time.monotonic() + 100)
    ex = Executor(robot, safety)
    ex.submit([Waypoint(EEPose(*HOME, 1.0), time.monotonic(), 10.0)])
    for _ in range(40):
        ex.step()
    assert robot.pose[3] == pytest.approx(1.0) and ex.queue_len == 0


def test_rebase_forgets_the_hold_pose() -> None:
    robot, _, ex = setup()
    ex.step()
    robot.pose = np.array([0.1, 0.0, 0.1, 0.0])
    ex.step()
    assert robot.pose[0] == pytest.approx(HOME[0])  # held the old pose (moved back)
    robot.pose = np.array([0.1, 0.0, 0.1, 0.0])
    ex.rebase()
    ex.step()
    assert robot.pose[0] == pytest.approx(0.1)


def test_thread_runs_at_rate_and_final_hold() -> None:
    robot = BridgeRobot(FakeRobot())
    safety = Safety(SafetyConfig(), control_hz=50.0, workspace=WORKSPACE)
    safety.watchdog.feed(until=time.monotonic() + 100)
    ex = Executor(robot, safety, rate_hz=50.0, state_fn=robot.ee_pose)
    with ex:
        time.sleep(0.5)
    n = ex.stats.ticks
    assert 15 <= n <= 30
    assert ex.stats.jitter_ms(0.02, 50) < 20
    assert not ex.running
