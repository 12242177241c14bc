"""Safety layer: limits, e-stop latch (API, HTTP, keys, signal), watchdog, invalid-output stop."""

from __future__ import annotations

import io
import math
import os
import signal
import time

import httpx
import numpy as np
import pytest

from dppo_embodied.errors import ConfigError
from robot_bridge.estop import EStopServer, KeyboardEStop, install_signal_estop, restore_signals
from robot_bridge.pose import EEPose
from robot_bridge.safety import EStop, Safety, SafetyConfig, Watchdog

WS = ((-0.2, -0.2, 0.0), (0.2, 0.2, 0.3))


def make(**kw: object) -> Safety:
    return Safety(SafetyConfig(**kw), control_hz=30.0, workspace=WS)  # type: ignore[arg-type]


def test_step_is_capped_and_straight() -> None:
    s = make(max_speed_m_s=0.3)
    cur = EEPose(0.0, 0.0, 0.1, 0.0)
    out = s.safe_ee(EEPose(0.1, 0.0, 0.1, 0.0), cur)
    assert out.x == pytest.approx(0.01) and out.y == 0.0 and out.z == pytest.approx(0.1)
    diag = s.safe_ee(EEPose(0.1, 0.1, 0.2, 0.0), cur)
    assert diag.distance(cur) == pytest.approx(0.01)
    assert (diag.x - cur.x) == pytest.approx(diag.y - cur.y)  # along the line to the target


def test_workspace_clamp_and_event() -> None:
    s = make(max_speed_m_s=100.0)
    out = s.safe_ee(EEPose(1.0, -1.0, -0.5, 0.0), EEPose(0.0, 0.0, 0.1, 0.0))
    assert (out.x, out.y, out.z) == (0.2, -0.2, 0.0)
    assert s.events.snapshot()["workspace_clip"] == 1


def test_gripper_ramp_and_range() -> None:
    s = make(max_gripper_per_s=3.0)
    cur = EEPose(0.0, 0.0, 0.1, 0.0)
    out = s.safe_ee(EEPose(0.0, 0.0, 0.1, 7.0), cur)
    assert out.gripper == pytest.approx(0.1)
    out = s.safe_ee(EEPose(0.0, 0.0, 0.1, -3.0), EEPose(0.0, 0.0, 0.1, 0.05))
    assert out.gripper == 0.0


def test_slow_mode_scales_speed() -> None:
    fast, slow = make(max_speed_m_s=0.3), make(max_speed_m_s=0.3, slow_scale=0.25)
    assert slow.step_m == pytest.approx(fast.step_m / 4)
    cur = EEPose(0.0, 0.0, 0.1)
    assert slow.safe_ee(EEPose(0.1, 0.0, 0.1), cur).x == pytest.approx(0.0025)


def test_segment_speed_only_lowers_the_cap() -> None:
    s = make(max_speed_m_s=0.3)
    cur = EEPose(0.0, 0.0, 0.1)
    assert s.safe_ee(EEPose(0.1, 0.0, 0.1), cur, speed_m_s=0.03).x == pytest.approx(0.001)
    assert s.safe_ee(EEPose(0.1, 0.0, 0.1), cur, speed_m_s=30.0).x == pytest.approx(0.01)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nonfinite_target_holds(bad: float) -> None:
    s = make()
    cur = EEPose(0.05, 0.0, 0.1, 0.5)
    assert s.safe_ee(EEPose(bad, 0.0, 0.1, 0.0), cur) == cur
    assert s.events.snapshot()["nonfinite_target"] == 1


def test_no_workspace_refuses_to_move() -> None:
    s = Safety(SafetyConfig(), control_hz=30.0)
    with pytest.raises(ConfigError, match="workspace"):
        s.safe_ee(EEPose(0, 0, 0.1), EEPose(0, 0, 0.1))


def test_joint_limits_and_relative_cap() -> None:
    s = Safety(SafetyConfig(joint_limits={"a.pos": (-90.0, 90.0)}, max_joint_step=5.0), control_hz=30.0)
    out = s.safe_joints({"a.pos": 170.0, "b.pos": -40.0, "c.pos": math.nan}, {"a.pos": 80.0, "b.pos": 0.0,
                                                                              "c.pos": 3.0})
    assert out == {"a.pos": 85.0, "b.pos": -5.0, "c.pos": 3.0}
    assert s.events.snapshot()["joint_limit"] == 1


@pytest.mark.parametrize("kw", [{"slow_scale": 0.0}, {"slow_scale": 1.5}, {"watchdog_s": 0}, {"max_invalid": 0},
                                {"workspace_min": (0, 0, 0)}, {"workspace_min": (1, 0, 0), "workspace_max": (0, 1, 1)},
                                {"joint_limits": {"a": (1.0, -1.0)}}])
def test_config_validation(kw: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        SafetyConfig(**kw)  # type: ignore[arg-type]


def test_estop_latches_until_reset() -> None:
    e = EStop()
    e.trigger("first", source="test")
    e.trigger("second", source="test")
    assert e.latched and e.reason == "first" and e.count == 1
    assert e.reset() is True and not e.latched
    assert e.reset() is False


def test_may_move_reasons_and_invalid_stop() -> None:
    s = make(max_invalid=3)
    assert s.may_move() == "watchdog"  # never fed
    s.watchdog.feed()
    assert s.may_move() is None
    assert not s.note_invalid("bad json") and not s.note_invalid("bad json")
    assert s.note_invalid("bad json") and s.stopped and s.may_move() == "stopped"
    s.reset_episode()
    s.estop.trigger("x")
    assert s.may_move() == "estop"
    s.estop.reset()
    assert s.may_move() == "estop" and s.estopped and s.estop.last_reason == "x"  # pressed in this episode
    s.reset_episode()
    assert s.may_move() is None and not s.estopped


def test_watchdog_feed_until() -> None:
    w = Watchdog(0.05)
    w.feed()
    assert not w.expired()
    time.sleep(0.08)
    assert w.expired()
    w.feed(until=time.monotonic() + 0.3)
    time.sleep(0.08)
    assert not w.expired()
    w.starve()
    assert w.expired()


@pytest.mark.network
def test_estop_http_endpoint_with_token() -> None:
    e = EStop()
    with EStopServer(e, token="t0k", status=lambda: {"mode": "hold"}) as srv:
        assert not srv.token_generated and srv.token == "t0k"
        assert httpx.get(f"{srv.url}/status").json() == {"latched": False, "reason": None, "mode": "hold"}
        assert httpx.post(f"{srv.url}/estop").json()["latched"] is True
        assert e.latched and e.source == "http"
        assert httpx.post(f"{srv.url}/reset", json={}).status_code == 401  # stopping is free, resetting is not
        assert e.latched
        r = httpx.post(f"{srv.url}/reset", json={}, headers={"Authorization": "Bearer t0k"})
        assert r.status_code == 200 and r.json()["was_latched"] and not e.latched
        assert httpx.get(f"{srv.url}/nope").status_code == 404
    with pytest.raises(ConfigError):
        EStopServer(e, host="0.0.0.0")


def test_keyboard_estop() -> None:
    e = EStop()
    quit_called: list[bool] = []
    k = KeyboardEStop(e, stream=io.StringIO("\nreset\ns\nq\n"), on_quit=lambda: quit_called.append(True))
    k._thread.join(2.0)
    assert e.latched and quit_called == [True]


def test_signal_estop() -> None:
    e = EStop()
    old = install_signal_estop(e)
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        for _ in range(100):
            if e.latched:
                break
            time.sleep(0.01)
        assert e.latched and e.source == "signal"
    finally:
        restore_signals(old)


def test_clamp_returns_copy_inside() -> None:
    s = make()
    p = np.array([0.1, 0.1, 0.1])
    q, clipped = s.clamp_workspace(p)
    assert not clipped and np.allclose(p, q)
