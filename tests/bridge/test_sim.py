"""The bridge on the MuJoCo twin (``--robot sim``).

* with a scripted stand-in server that replies like the expert (``envs.experts``), tasks succeed;
* end to end over real loopback HTTP: ``dppo serve`` with the tiny VLM and ``dppo bridge --robot sim`` as two
  processes run an episode and record it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("mujoco")

from dppo_embodied.actions import action_to_json
from robot_bridge.cameras.base import Frame
from robot_bridge.cameras.sim import RobotCamera
from robot_bridge.planner import PlannerConfig
from robot_bridge.safety import SafetyConfig
from robot_bridge.session import Bridge, BridgeConfig
from tests.helpers.fake_openai_server import FakeOpenAIServer
from tests.helpers.serve_process import dppo_serve

pytestmark = [pytest.mark.mujoco, pytest.mark.network]
ROOT = Path(__file__).resolve().parents[2]


class ExpertCamera(RobotCamera):
    """The twin's camera that also asks the scripted expert (``envs.experts``) for the next action each frame.

    The expert renders (segmentation), and an EGL context can only be current in one thread, so it runs here, in
    the capture thread, right after the frame it describes.
    """

    action, t_action = "", 0.0

    def read(self) -> Frame:
        from envs.experts import plan_action

        frame = super().read()
        with self.robot.lock:
            twin = self.robot.robot
            if twin.task is not None:
                self.action = action_to_json(plan_action(twin.scene, twin.task, "front"))
                self.t_action = time.monotonic()
        return frame

    def reply(self, _request: dict[str, Any]) -> str:
        """The expert's action for a state at least as new as the frame the request carries."""
        t_request = time.monotonic()
        t_end = t_request + 2.0
        while self.t_action < t_request and time.monotonic() < t_end:
            time.sleep(0.005)
        return self.action


def test_expert_standin_solves_sim_tasks(tmp_path: Path) -> None:
    cams: list[ExpertCamera] = []

    def camera(robot: Any) -> ExpertCamera:
        cams.append(ExpertCamera(robot, "front"))
        return cams[0]

    with FakeOpenAIServer(responder=lambda request: cams[0].reply(request)) as srv:
        cfg = BridgeConfig(robot="sim", robot_args={"seed": 3, "image_size": 128}, server=srv.url,
                           model="fake-model", planner=PlannerConfig(rate_hz=3.0, max_steps=8),
                           safety=SafetyConfig(max_speed_m_s=0.5), record=str(tmp_path / "rec"))
        with Bridge(cfg, camera=camera) as b:
            objects = list(b.robot.scene_state()["objects"])
            flat = [o for o in objects if not o.endswith("_ball")]  # balls roll off stacks
            assert len(flat) >= 2, objects
            base, top = flat[0], flat[1]
            pick = b.run_episode(task=f"pick {objects[0]}", seed=3)
            stack = b.run_episode(task=f"stack {top} on {base}", seed=3)
            assert b.safety is not None and not b.safety.estop.latched
    assert pick.status == "done" and pick.success is True, pick
    assert stack.status == "done" and stack.success is True, stack
    assert [d.action.then for d in stack.decisions[:2]] == ["grasp", "place"]  # type: ignore[union-attr]
    info = json.loads((tmp_path / "rec" / "meta" / "info.json").read_text())
    assert info["total_episodes"] == 2 and info["total_frames"] == pick.steps + stack.steps


def test_serve_tiny_vlm_and_bridge_sim_end_to_end(tiny_vlm_path: Path, tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DPPO_LOG_LEVEL": "WARNING"}
    env.pop("DPPO_API_KEY", None)
    with dppo_serve(["--model", str(tiny_vlm_path), "--port", "0", "--served-model-name", "tiny", "--max-tokens",
                     "48", "--threads", "1"], env) as srv:
        url = srv.url
        root = url[: -len("/v1")]
        for _ in range(100):
            if httpx.get(f"{root}/health", timeout=2).status_code == 200:
                break
            time.sleep(0.1)
        rec = tmp_path / "rec"
        bridge = subprocess.run(
            [sys.executable, "-m", "dppo_embodied.cli", "bridge", "--robot", "sim", "--robot-arg", "seed=1",
             "--robot-arg", "image_size=96", "--server", url, "--max-steps", "3", "--rate", "3",
             "--request-timeout", "20", "--max-tokens", "24", "--record", str(rec), "--json", "--no-status"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
        assert bridge.returncode == 0, bridge.stdout + bridge.stderr
        summary = json.loads(bridge.stdout.strip().splitlines()[-1])
        ep = summary["episodes"][0]
        assert ep["steps"] >= 1 and (ep["status"] in ("max_steps", "done") or ep["status"].startswith("stopped"))
        assert summary["estop"] is False
        info = json.loads((rec / "meta" / "info.json").read_text())
        assert info["total_frames"] == ep["steps"] and info["robot_type"] == "tabletop_twin"
