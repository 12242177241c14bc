"""kill -9 in the middle of the difficulty step, then --resume: no rollout is asked of the server twice.

The run generates on an OpenAI-compatible server in this process (``rollout.engine: openai``). The server answers
the first 30 difficulty requests, then holds every further one; once the run's journal holds those 30 rollouts,
the run is killed, the held requests are dropped unanswered, and the run is resumed against the same server. In
all, the server must have answered exactly T rollouts per candidate: every answered rollout was kept, none sent
again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dppo_embodied.io import read_json
from tests.helpers.fake_openai_server import FakeOpenAIServer
from tests.training.conftest import TINY_OVERRIDES

pytestmark = [pytest.mark.slow, pytest.mark.network]

ROOT = Path(__file__).resolve().parents[2]
ROLLOUTS, CANDIDATES, FIRST = 4, 24, 30
DIFFICULTY_TOKENS = 7  # tells the difficulty requests from the evaluation ones (8 tokens)


def test_resumed_difficulty_step_sends_only_the_missing_rollouts(tmp_path: Path) -> None:
    lock = threading.Lock()
    answered = {"n": 0}
    hold, release = threading.Event(), threading.Event()

    def responder(req: dict) -> str:
        if req.get("max_tokens") == DIFFICULTY_TOKENS:
            with lock:
                held = hold.is_set() and answered["n"] >= FIRST
                if not held:
                    answered["n"] += 1
            if held:
                release.wait(120)
                raise RuntimeError("dropped: the client was killed")  # never answered (a 500 to a dead socket)
        return "<answer>A</answer>"

    out = tmp_path / "run"
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text("name: tiny\nmode: grpo_only\n")
    cmd = [sys.executable, "-m", "training.cli", "--config", str(recipe), "--output-dir", str(out), "--no-progress",
           *TINY_OVERRIDES, f"difficulty.max_new_tokens={DIFFICULTY_TOKENS}",
           f"difficulty.rollouts={ROLLOUTS}", "rollout.engine=openai", "rollout.model=fake-model",
           "rollout.concurrency=4", "rollout.max_retries=0"]
    env = {**os.environ, "TRL_EXPERIMENTAL_SILENCE": "1", "OMP_NUM_THREADS": "1"}
    with FakeOpenAIServer(responder=responder, lifetime_s=600) as srv:
        cmd.append(f"rollout.base_urls=[{srv.url}]")
        hold.set()
        log = (tmp_path / "first.log").open("w")
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        journal = out / "rollouts" / "k1-difficulty" / "rank0.jsonl"
        try:
            deadline = time.time() + 240
            while time.time() < deadline and proc.poll() is None:
                lines = journal.read_text().count('"key"') if journal.is_file() else 0
                if lines >= FIRST:
                    break
                time.sleep(0.05)
            assert proc.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
            assert journal.read_text().count('"key"') == FIRST == answered["n"]
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(30)
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            log.close()
            release.set()
        assert read_json(out / "state.json")["completed"] == ["prepare", "eval_base"]  # killed inside the step
        hold.clear()
        done = subprocess.run([*cmd, "--resume"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-4000:])
    assert answered["n"] == CANDIDATES * ROLLOUTS  # every rollout answered once: none was sent twice
    state = read_json(out / "state.json")
    assert state["completed"][-1] == "k1/eval" and state["values"]["k1/difficulty"]["failed_rollouts"] == 0
    table = read_json(out / "sr" / "k1.json")
    assert len(table) == CANDIDATES and all(r["n"] == ROLLOUTS for r in table.values())
