"""Planner decisions over real loopback HTTP (fake OpenAI server) with the fake robot."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from dppo_embodied.errors import ConfigError
from dppo_embodied.images import decode_data_url
from dppo_embodied.prompts import COMPACT_SYSTEM_PROMPT
from robot_bridge.planner import EXECUTED
from tests.bridge.conftest import BridgeFactory
from tests.bridge.fakes import FakeRobot
from tests.helpers.fake_openai_server import FakeOpenAIServer, image_urls, last_user_text

pytestmark = pytest.mark.network


def test_point_decision_moves_the_robot(make_bridge: BridgeFactory) -> None:
    robot = FakeRobot()
    x, y, _ = robot.cal.project(np.array([0.05, 0.05, 0.04]))
    reply = json.dumps({"action": {"type": "point", "x": x, "y": y, "then": "move_to"}})
    with FakeOpenAIServer(responder=lambda r: reply) as srv:
        b = make_bridge(srv.url, robot=robot, planner={"max_steps": 1})
        result = b.run_episode()
        d = result.decisions[0]
        assert d.status == "ok" and d.action is not None and d.waypoints
        assert d.waypoints[-1].pose.z == pytest.approx(0.04 + 0.05, abs=0.01)
        assert set(d.timings_ms) >= {"capture", "encode", "request", "parse", "plan", "total", "overhead"}
        req = srv.chat_requests[0]["json"]
        msgs = req["messages"]
        assert msgs[0]["role"] == "system" and "JSON" in msgs[0]["content"][0]["text"]
        parts = msgs[1]["content"]
        assert parts[0]["type"] == "text" and parts[1]["type"] == "image_url"  # static text before the image
        assert decode_data_url(image_urls(req)[0])[:3] == b"\xff\xd8\xff"  # a JPEG data URL
        assert "Touch the box." in last_user_text(req)
        assert req["max_tokens"] == 128 and req["temperature"] == 0.0


def test_invalid_outputs_feed_back_and_stop(make_bridge: BridgeFactory) -> None:
    with FakeOpenAIServer(responder=lambda r: "I would rather not.") as srv:
        b = make_bridge(srv.url, planner={"rate_hz": 20.0}, safety={"max_invalid": 3})
        result = b.run_episode()
        assert result.status.startswith("stopped") and "3 invalid" in result.status
        assert [d.status for d in result.decisions] == ["invalid"] * 3
        second = last_user_text(srv.chat_requests[1]["json"])
        reason = result.decisions[0].error
        # the simulated envs' history format: "{raw reply, one line} -> {feedback}"
        assert f"Feedback: Last action is invalid: {reason}" in second
        assert f"Previous actions:\n- I would rather not. -> Last action is invalid: {reason}" in second


def test_done_ends_the_episode(make_bridge: BridgeFactory) -> None:
    with FakeOpenAIServer(responder=lambda r: '<think>ok</think>{"action": {"type": "done"}}') as srv:
        result = make_bridge(srv.url).run_episode()
        assert result.status == "done" and result.steps == 1


def test_request_error_holds(make_bridge: BridgeFactory) -> None:
    with FakeOpenAIServer(mode="error500") as srv:
        b = make_bridge(srv.url, planner={"max_steps": 2})
        result = b.run_episode()
        assert [d.status for d in result.decisions] == ["request_error"] * 2
        assert b.safety is not None and b.safety.events.snapshot()["request_error"] == 2
        assert b.executor is not None and b.executor.last is not None
        assert b.executor.last.mode.startswith("hold")


def test_stale_frame_holds_without_asking_the_model(make_bridge: BridgeFactory) -> None:
    with FakeOpenAIServer(responder=lambda r: '{"action": {"type": "done"}}') as srv:
        b = make_bridge(srv.url, planner={"max_steps": 1}, safety={"stale_frame_s": 0.1})
        assert b.frames is not None
        b.frames.stop()
        time.sleep(0.2)
        result = b.run_episode()
        assert result.decisions[0].status == "stale_frame" and srv.chat_requests == []


def test_skill_refused_without_locator_is_counted(make_bridge: BridgeFactory) -> None:
    reply = '{"action": {"type": "skill", "name": "pick", "object": "red_block"}}'
    with FakeOpenAIServer(responder=lambda r: reply) as srv:
        b = make_bridge(srv.url, planner={"max_steps": 1})
        d = b.run_episode().decisions[0]
        assert d.status == "invalid" and "unknown skill" in d.error  # allowlist: open/close/lift/home only


def test_http_estop_latches_the_episode_until_reset(make_bridge: BridgeFactory) -> None:
    import threading

    import httpx

    reply = '{"action": {"type": "move", "dx_cm": 5}}'
    with FakeOpenAIServer(responder=lambda r: reply) as srv:
        robot = FakeRobot()
        b = make_bridge(srv.url, robot=robot, estop_port=0, planner={"requeue_fraction": 1.0},
                        safety={"max_speed_m_s": 0.05})
        assert b.estop_server is not None
        url = b.estop_server.url
        runner = threading.Thread(target=lambda: setattr(b, "_r", b.run_episode()), daemon=True)
        runner.start()
        time.sleep(0.6)
        assert httpx.get(f"{url}/status").json()["mode"] == "move"
        assert httpx.post(f"{url}/estop").status_code == 200
        runner.join(5.0)
        assert b._r.status.startswith("estop")  # type: ignore[attr-defined]
        n = len(robot.actions)
        time.sleep(0.3)
        poses = [a["ee.x"] for a in robot.actions[n:]]
        assert poses and max(poses) - min(poses) < 1e-9  # latched: holding in place
        assert b.run_episode().steps == 0  # still latched: nothing runs
        assert httpx.post(f"{url}/reset", json={}).status_code == 401  # un-latching needs the operator token
        token = {"Authorization": f"Bearer {b.estop_server.token}"}
        assert httpx.post(f"{url}/reset", json={}, headers=token).json()["was_latched"] is True
        assert b.run_episode(max_steps=1).steps == 1
        assert "e-stop off" in b.status_line()


def test_malformed_frame_holds(make_bridge: BridgeFactory) -> None:
    from robot_bridge.cameras.base import Frame

    with FakeOpenAIServer(responder=lambda r: '{"action": {"type": "done"}}') as srv:
        b = make_bridge(srv.url, planner={"max_steps": 1})
        assert b.frames is not None
        b.frames.stop()
        b.frames.push(Frame(np.zeros((8, 8, 3), dtype=np.float32), time.monotonic()))  # float frame: not encodable
        d = b.run_episode().decisions[0]
        assert d.status == "encode_error" and "uint8" in d.error and srv.chat_requests == []


def test_executed_actions_are_fed_back_in_the_history_format(make_bridge: BridgeFactory) -> None:
    robot = FakeRobot()
    x, y, _ = robot.cal.project(np.array([0.05, 0.05, 0.04]))
    reply = json.dumps({"action": {"type": "point", "x": round(x, 3), "y": round(y, 3), "then": "move_to"}})
    with FakeOpenAIServer(responder=lambda r: reply) as srv:
        b = make_bridge(srv.url, robot=robot, planner={"max_steps": 2, "sync": True}, safety={"max_speed_m_s": 0.5})
        result = b.run_episode()
        assert [d.status for d in result.decisions] == ["ok", "ok"]
        second = last_user_text(srv.chat_requests[1]["json"])
        command = result.decisions[0].command_json
        assert f"- {command} -> {EXECUTED}" in second and f"Feedback: {EXECUTED}" in second
        assert result.decisions[1].conversation is not None
        assert result.decisions[1].conversation.text == second


def test_skills_offered_and_prompt_style_come_from_the_config(make_bridge: BridgeFactory) -> None:
    with FakeOpenAIServer(responder=lambda r: '{"action": {"type": "done"}}') as srv:
        b = make_bridge(srv.url, skills=["home"], step_prompt="compact")
        assert b.skill_names == ("home",)
        b.run_episode()
        msgs = srv.chat_requests[0]["json"]["messages"]
        assert msgs[0]["content"][0]["text"] == COMPACT_SYSTEM_PROMPT
        assert "Available skills: home." in last_user_text(srv.chat_requests[0]["json"])
        with pytest.raises(ConfigError, match="not supported by this robot"):
            make_bridge(srv.url, skills=["pick"])  # the fake robot has no object locator
