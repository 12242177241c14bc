"""kill -9 at a random moment, then --resume: finishes, state intact, no step done twice."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from dppo_embodied.io import read_json
from tests.training.conftest import TINY_OVERRIDES
from tests.training.test_metaloop import DPPO_STEPS

ROOT = Path(__file__).resolve().parents[2]


def _cmd(recipe: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "training.cli", "--config", str(recipe), "--output-dir", str(out), "--no-progress",
            *extra, *TINY_OVERRIDES]


def test_resume_after_kill_9(tmp_path: Path) -> None:
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text("name: tiny\n")
    out = tmp_path / "run"
    env = {**os.environ, "TRL_EXPERIMENTAL_SILENCE": "1", "OMP_NUM_THREADS": "1"}
    seed = int(os.environ.get("DPPO_KILL_SEED", random.randrange(1 << 16)))
    rng = random.Random(seed)
    log = (tmp_path / "first.log").open("w")
    proc = subprocess.Popen(_cmd(recipe, out), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        journal = out / "journal.jsonl"
        deadline = time.time() + 120
        target = rng.randint(1, len(DPPO_STEPS) - 3)  # kill after this many steps, plus a random delay
        while time.time() < deadline and proc.poll() is None:
            if journal.is_file() and len(journal.read_text().splitlines()) >= target:
                break
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.4))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL, (seed, "the run ended before it could be killed")
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        log.close()
    before = read_json(out / "state.json")["completed"]  # the state file is never half-written
    assert before == DPPO_STEPS[:len(before)] and len(before) < len(DPPO_STEPS), (seed, before)
    done = subprocess.run(_cmd(recipe, out, "--resume"), cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, (seed, done.stdout[-2000:], done.stderr[-4000:])
    state = read_json(out / "state.json")
    assert state["completed"] == DPPO_STEPS, seed
    steps = [json.loads(x)["step"] for x in (out / "journal.jsonl").read_text().splitlines()]
    assert len(steps) == len(set(steps)), (seed, steps)  # no step ran to completion twice
    assert set(steps) <= set(DPPO_STEPS)
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name or ".old-" in p.name]
    assert set(read_json(out / "summary.json")) >= {"base", "final"}
