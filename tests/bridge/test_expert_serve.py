"""`dppo serve --backend expert`: the sim envs' scripted expert behind the OpenAI protocol, so that `dppo bridge
--robot sim` can be rehearsed end to end and completes its task (over loopback, two processes)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mujoco")

from dppo_embodied.episode import StepObservation, render_step
from dppo_embodied.prompts import build_step_prompt

pytestmark = [pytest.mark.mujoco]
ROOT = Path(__file__).resolve().parents[2]


def test_step_text_reads_back_what_the_renderer_wrote() -> None:
    from envs.expert_policy import read_step_text

    hist = ('{"action": {"type": "point", "x": 0.5, "y": 0.4, "then": "grasp"}} -> Last action succeeded: held',
            "garbage -> Last action is invalid: no JSON")
    step = read_step_text(build_step_prompt("Pick up the red ball.", "Last action succeeded: held", hist,
                                            ("pick", "place")))
    assert step.instruction == "Pick up the red ball." and step.history == hist
    assert step.feedback == "Last action succeeded: held"
    assert read_step_text(build_step_prompt("Stack a on b.")).history == ()


def _first_step(twin: Any, task: str) -> Any:
    twin.set_task(task)
    obs = StepObservation(images=(twin.scene.render("front"),), instruction=twin.task.instruction)
    return render_step(obs)


def test_expert_finds_the_scene_by_its_first_frame_and_the_disc_in_the_image() -> None:
    from envs.expert_policy import ExpertPolicy
    from envs.twin import TabletopTwinRobot

    with TabletopTwinRobot(seed=5, image_size=160) as twin:
        objects = list(twin.scene_state()["objects"])
        conv = _first_step(twin, f"push {objects[0]} at 0.08,0.05")
        expert = ExpertPolicy(seed=3)  # the bridge runs seed 5: the expert finds it among 3, 4, 5, ...
        try:
            reply = expert([conv])[0]
            assert json.loads(reply)["action"]["type"] in ("point", "skill")
            assert expert.episode_seed == 5
            tx, ty = expert._task.target
            assert abs(tx - 0.08) < 0.015 and abs(ty - 0.05) < 0.015, expert._task.target
        finally:
            expert.close()


def test_expert_refuses_what_is_not_a_step_prompt_with_a_clear_error() -> None:
    from dppo_embodied.conversation import Conversation
    from dppo_embodied.errors import ConfigError
    from envs.expert_policy import ExpertPolicy

    with pytest.raises(ConfigError, match="closed-loop step prompts only"):
        ExpertPolicy()([Conversation("What colour is the ball?")])


def _read_lines(stream: Any, q: queue.Queue[str]) -> None:
    for line in stream:
        q.put(line)


@pytest.mark.network
def test_bridge_completes_the_task_against_the_expert_server(tmp_path: Path) -> None:
    env = {**os.environ, "DPPO_LOG_LEVEL": "WARNING"}
    env.pop("DPPO_API_KEY", None)
    server = subprocess.Popen([sys.executable, "-m", "dppo_embodied.cli", "serve", "--backend", "expert", "--port",
                               "0", "--seed", "0"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=_read_lines, args=(server.stdout, lines), daemon=True).start()
        url, t_end, seen = None, time.monotonic() + 60, []
        while url is None and time.monotonic() < t_end and server.poll() is None:
            try:
                line = lines.get(timeout=1.0)
            except queue.Empty:
                continue
            seen.append(line)
            if line.startswith("dppo serve:") and "http://" in line:
                url = line.split("on ", 1)[1].split(" ", 1)[0]
        assert url is not None, "dppo serve --backend expert did not start:\n" + "".join(seen)
        from openai import OpenAI

        assert [m.id for m in OpenAI(base_url=url, api_key="none").models.list()] == ["expert"]
        rec = tmp_path / "deploy"
        bridge = subprocess.run(
            [sys.executable, "-m", "dppo_embodied.cli", "bridge", "--robot", "sim", "--server", url, "--task",
             "pick up the red ball", "--episodes", "1", "--max-steps", "6", "--max-speed", "0.5", "--record",
             str(rec), "--json", "--no-status"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
        assert bridge.returncode == 0, bridge.stdout + bridge.stderr
        ep = json.loads(bridge.stdout.strip().splitlines()[-1])["episodes"][0]
        assert ep["success"] is True and ep["status"] == "done", ep
        info = json.loads((rec / "meta" / "info.json").read_text())
        assert info["total_episodes"] == 1 and info["total_frames"] == ep["steps"]
    finally:
        if server.poll() is None:
            os.kill(server.pid, signal.SIGTERM)
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(server.pid, signal.SIGKILL)
                server.wait(5)
