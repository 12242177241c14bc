"""Issue 9 on the MuJoCo twin (``dppo bridge --robot sim``, run in-process), every robot command spied on:

* two episodes after the gripper closed (the second reset used to crash in ``mj_setConst``);
* the e-stop race: the operator presses ``POST /estop``, a stranger posts ``/reset`` (no token, text/plain, foreign
  Origin) at once: refused, the episode stays stopped, no motion command after the press, exit status 1;
* a 100k-deep nested JSON reply from the server: failed requests (holds), not a traceback;
* the 5 mm per-tick cap holds for every command actually sent (it was computed from a rounded state).
"""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pytest

pytest.importorskip("mujoco")

from envs.twin import TabletopTwinRobot
from robot_bridge.cli import main
from robot_bridge.executor import Executor
from robot_bridge.pose import EEPose, Waypoint
from robot_bridge.robots import BridgeRobot
from robot_bridge.safety import Safety, SafetyConfig
from tests.helpers.fake_openai_server import FakeOpenAIServer
from tests.helpers.raw_reply_server import RawReplyServer

pytestmark = [pytest.mark.mujoco, pytest.mark.network]
#: default cap: safety.max_speed_m_s / control_hz = 0.15 / 30 m per tick
CAP_M = 0.15 / 30
#: float rounding allowed on top of the cap (metres)
EPS = 1e-12


@dataclass
class Sent:
    """One command the twin received, with the true TCP just before it."""

    t: float
    xyz: np.ndarray
    gripper: float
    before: np.ndarray

    @property
    def step(self) -> float:
        return float(np.linalg.norm(self.xyz - self.before))


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[Sent]:
    """Every ``TabletopTwinRobot.send_action`` of the test, in order."""
    log: list[Sent] = []
    original = TabletopTwinRobot.send_action

    def spy(self: TabletopTwinRobot, action: dict[str, float]) -> dict[str, float]:
        before = self.scene.gripper_pos
        log.append(Sent(time.monotonic(), np.array([action["ee.x"], action["ee.y"], action["ee.z"]]),
                        float(action["gripper.pos"]), before))
        return original(self, action)

    monkeypatch.setattr(TabletopTwinRobot, "send_action", spy)
    return log


def run_bridge(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any], str]:
    """``dppo bridge --robot sim ... --json --no-status``: exit code, JSON summary, stderr."""
    rc = main(["--robot", "sim", "--robot-arg", "image_size=64", "--model", "fake-model", "--rate", "5", "--json",
               "--no-status", *argv])
    out, err = capsys.readouterr()
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    return rc, json.loads(lines[-1]) if lines else {}, err


def assert_capped(log: list[Sent]) -> None:
    worst = max(s.step for s in log)
    assert worst <= CAP_M + EPS, f"a command moved {worst * 1000:.6f} mm in one tick (cap {CAP_M * 1000} mm)"


def test_two_episodes_after_the_gripper_closed(sent: list[Sent], capsys: pytest.CaptureFixture[str]) -> None:
    reply = '{"action": {"type": "move", "dz_cm": -4, "gripper": "close"}}'
    with FakeOpenAIServer(responder=lambda _r: reply) as srv:
        rc, summary, err = run_bridge(["--server", srv.url, "--episodes", "2", "--max-steps", "2"], capsys)
    assert rc == 0, err
    assert [e["steps"] for e in summary["episodes"]] == [2, 2] and summary["estop"] is False
    assert any(s.gripper == 1.0 for s in sent)  # the gripper did close before the second reset
    assert_capped(sent)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_estop_race_a_stranger_cannot_undo_the_stop(sent: list[Sent], capsys: pytest.CaptureFixture[str]) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    in_request, stranger_done = threading.Event(), threading.Event()
    probe: dict[str, Any] = {}
    k = [0]

    def responder(_r: dict[str, Any]) -> str:  # keeps moving; the 4th request is in flight during the race
        k[0] += 1
        if k[0] == 4:
            in_request.set()
            stranger_done.wait(10)
        return json.dumps({"action": {"type": "move", "dx_cm": 5 if k[0] % 2 else -5}})

    def operator_then_stranger() -> None:
        if not in_request.wait(30):
            return
        probe["pressed"] = httpx.post(f"{url}/estop", timeout=2).status_code
        probe["t_press"] = time.monotonic()
        probe["stranger"] = [
            httpx.post(f"{url}/reset", content=b"{}", timeout=2,
                       headers={"Content-Type": "text/plain", "Origin": "http://evil.example"}).status_code,
            httpx.post(f"{url}/reset", content=b"reset", timeout=2,
                       headers={"Content-Type": "text/plain"}).status_code,
            httpx.post(f"{url}/reset", json={}, timeout=2).status_code,
        ]
        probe["latched_after"] = httpx.get(f"{url}/status", timeout=2).json()["latched"]
        stranger_done.set()

    with FakeOpenAIServer(responder=responder) as srv:
        helper = threading.Thread(target=operator_then_stranger, daemon=True)
        helper.start()
        rc, summary, err = run_bridge(["--server", srv.url, "--episodes", "2", "--max-steps", "200",
                                       "--request-timeout", "15", "--set", "planner.requeue_fraction=1.0",
                                       "--estop-port", str(port)], capsys)
        stranger_done.set()
        helper.join(10)
    assert probe["pressed"] == 200 and probe["stranger"] == [403, 401, 401] and probe["latched_after"] is True
    assert rc == 1 and "stopped by the e-stop (HTTP /estop)" in err
    assert "Authorization: Bearer " in err  # the generated operator token is shown to the operator
    assert len(summary["episodes"]) == 1 and summary["episodes"][0]["status"] == "estop: HTTP /estop"
    before = [s for s in sent if s.t < probe["t_press"]]
    after = [s for s in sent if s.t >= probe["t_press"]]
    assert any(s.step > 0 for s in before)  # it was moving
    assert after and all(s.step == 0.0 for s in after)  # after the press: holds only (and the final hold)
    assert_capped(sent)


def test_deeply_nested_reply_is_a_failed_request(sent: list[Sent], capsys: pytest.CaptureFixture[str]) -> None:
    deep = b'{"choices": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with RawReplyServer(deep) as srv:
        rc, summary, err = run_bridge(["--server", srv.url, "--max-steps", "2"], capsys)
        hits = srv.hits
    assert rc == 0 and "Traceback" not in err and "RecursionError" not in err
    assert summary["episodes"][0]["status"] == "max_steps" and summary["safety"]["request_error"] == 2
    assert hits == 2 and sent and all(s.step == 0.0 for s in sent)  # the robot only held


def test_delta_cap_holds_for_every_sent_command(sent: list[Sent]) -> None:
    twin = TabletopTwinRobot(seed=0, image_size=32, depth=False)
    robot = BridgeRobot(twin)  # its own profile: the workspace box
    robot.connect()
    try:
        assert robot.workspace is not None
        lo, hi = robot.workspace
        safety = Safety(SafetyConfig(), control_hz=30.0, workspace=robot.workspace)
        safety.watchdog.feed(until=time.monotonic() + 3600)
        ex = Executor(robot, safety, rate_hz=30.0, state_fn=robot.ee_pose)
        rng = random.Random(0)
        for _ in range(3000):
            if ex.queue_len == 0 or rng.random() < 0.02:
                p = [rng.uniform(a - 0.1, b + 0.1) for a, b in zip(lo, hi, strict=True)]  # also outside the box
                ex.submit([Waypoint(EEPose(*p, float(rng.random() < 0.5)), time.monotonic(), 3600.0,
                                    speed_m_s=rng.choice([None, None, 0.05, 0.5, 10.0]))])
            ex.step()
    finally:
        robot.disconnect()
    assert len(sent) == 3000
    at_cap = sum(s.step > CAP_M * 0.999 for s in sent)
    assert at_cap > 1000  # most ticks moved at full speed: the cap was exercised, not avoided
    assert_capped(sent)
