"""Two CPU processes (accelerate, gloo): ranks agree on SR tables, buffers and the RL stop decision."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dppo_embodied.io import read_json
from tests.training.conftest import TINY_OVERRIDES

ROOT = Path(__file__).resolve().parents[2]


def test_two_process_gloo_run_agrees(tmp_path: Path) -> None:
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text("name: tiny\n")
    out = tmp_path / "run"
    # a brief pre-training (120 steps) gives the tiny model candidates it sometimes solves (6 of 24 here): untrained,
    # it solved 0-1 of them, so whether GRPO had a buffer to step on (and stop decisions to compare) was luck
    # accelerate's `--cpu` starts one process without MPI; ddp_cpu.yaml uses torchrun, and without CUDA the two
    # processes form a gloo group on CPU (see training/runs/distributed.py)
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
           str(ROOT / "training" / "recipes" / "accelerate" / "ddp_cpu.yaml"), "--main_process_port", "0",
           "-m", "training.cli", "--config", str(recipe), "--output-dir", str(out), "--no-progress",
           *TINY_OVERRIDES, "grpo.max_steps=6", "grpo.stagnation.min_windows=1", "grpo.stagnation.threshold=0.05",
           "pretrain.steps=120", "pretrain.n_samples=480", "pretrain.task_share=0.5", "pretrain.batch_size=8"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TRL_EXPERIMENTAL_SILENCE": "1"}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-6000:])
    r0, r1 = (read_json(out / "ranks" / f"k1-difficulty-rank{r}.json") for r in (0, 1))
    assert r0 == r1 and len(r0["sr"]) == 24  # identical SR tables (each rank rolled half) and buffers
    rl0, rl1 = (read_json(out / "ranks" / f"k1-rl-rank{r}.json") for r in (0, 1))
    assert rl0 == rl1 and rl0["stop_decisions"]  # same windows, same TS, same stop step
    recs = [read_json(out / "state.json")]
    assert recs[0]["completed"][-1] == "k1/eval"
    # both ranks scored completions and recorded them under their own file
    assert (out / "rl" / "k1" / "rewards.rank0.jsonl").is_file() or not rl0["steps"]


@pytest.mark.slow
@pytest.mark.network
def test_two_processes_share_one_node_of_rollout_servers(tmp_path: Path) -> None:
    """rollout.engine=server under two processes: the first process of the node launches the replica, both ranks
    send their own shard to it, and both hold the same SR table and buffer."""
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text("name: tiny\nmode: grpo_only\n")
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
           str(ROOT / "training" / "recipes" / "accelerate" / "ddp_cpu.yaml"), "--main_process_port", "0",
           "-m", "training.cli", "--config", str(recipe), "--output-dir", str(out), "--no-progress",
           *TINY_OVERRIDES, "rollout.engine=server", "rollout.server.kind=dppo", "rollout.server.threads=1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TRL_EXPERIMENTAL_SILENCE": "1"}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-6000:])
    r0, r1 = (read_json(out / "ranks" / f"k1-difficulty-rank{r}.json") for r in (0, 1))
    assert r0 == r1 and len(r0["sr"]) == 24
    journals = sorted(p.name for p in (out / "rollouts" / "k1-difficulty").glob("rank*.jsonl"))
    assert journals == ["rank0.jsonl", "rank1.jsonl"]  # each rank rolled its own shard
    assert sorted(p.name for p in (out / "rollouts" / "servers").iterdir()) == ["node0"]  # one node, one fleet
    logs = list((out / "rollouts" / "servers" / "node0").glob("replica*.log"))
    assert [p.name for p in logs] == ["replica0.log"]
    assert read_json(out / "state.json")["completed"][-1] == "k1/eval"
