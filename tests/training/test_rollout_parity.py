"""With greedy decoding, the local engine and the server engine (``dppo serve`` replicas of the tiny model) give the
same rollouts, SR tables, buffers and evaluation results: the engine changes where generation runs, nothing else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dppo_embodied.io import iter_json_lines, read_json
from tests.training.conftest import TINY_OVERRIDES
from training.algorithm.data_sources import read_data
from training.metaloop import Metaloop
from training.metaloop_config import load_metaloop_config

pytestmark = pytest.mark.network


def _checkpoint(folder: Path) -> Path:
    """The tiny model, told never to repeat a token: its greedy answers are non-empty and differ between prompts
    (a random tiny model otherwise answers blank lines), so comparing texts means something."""
    from inference.tiny_vlm import build_tiny_vlm

    path = Path(build_tiny_vlm(folder, size="tiny", seed=0))
    gen = path / "generation_config.json"
    gen.write_text(json.dumps({**json.loads(gen.read_text()), "no_repeat_ngram_size": 1}))
    return path


def _texts(folder: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for f in sorted(folder.glob("rank*.jsonl")):
        for _, rec, _ in iter_json_lines(f):
            if isinstance(rec, dict) and "key" in rec:
                out[rec["key"]] = rec.get("text", rec.get("error"))
    return out


def _responses(run: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for f in sorted((run / "eval" / "base").glob("*/samples.jsonl")):
        out[f.parent.name] = {r["id"]: (r.get("response"), r.get("score"), r.get("transcript"))
                              for _, r, _ in iter_json_lines(f) if isinstance(r, dict)}
    return out


def test_local_and_server_engines_agree_under_greedy_decoding(tmp_path: Path) -> None:
    model = _checkpoint(tmp_path / "tiny")
    envs = []
    try:
        import mujoco  # noqa: F401

        envs = ["data.env_tasks=[dppo/TabletopPick-v0]", "data.env_seeds=1", "data.env_heldout_seeds=1",
                "data.env_max_steps=2"]
    except ImportError:
        pass
    runs = {}
    for engine in ("local", "server"):
        out = tmp_path / engine
        cfg = load_metaloop_config(None, [*TINY_OVERRIDES, f"output_dir={out}", "model.build_tiny=null",
                                          f"model.path={model}", "difficulty.temperature=0", "difficulty.rollouts=2",
                                          f"rollout.engine={engine}", "rollout.server.kind=dppo",
                                          "rollout.server.threads=1", *envs])
        Metaloop(cfg, progress=False).run(until="k1/difficulty")
        runs[engine] = out
    local, server = runs["local"], runs["server"]
    assert (server / "rollouts" / "servers" / "node0" / "replica0.log").is_file()  # it really ran on a server
    texts = _texts(local / "rollouts" / "k1-difficulty")
    assert sum("@" not in k for k in texts) == 24 * 2  # 24 questions x 2 rollouts
    assert bool(envs) == any("@" in k for k in texts)  # and the episode's decisions
    assert sum(bool(t) for t in texts.values()) > len(texts) // 2  # real, non-empty answers
    assert texts == _texts(server / "rollouts" / "k1-difficulty")  # every rollout, word for word
    assert read_json(local / "sr" / "k1.json") == read_json(server / "sr" / "k1.json")
    assert read_json(local / "buffers" / "k1.json") == read_json(server / "buffers" / "k1.json")
    resp = _responses(local)
    assert set(resp) == {"heldout_qa", "general_replay"} | ({"heldout_closed_loop"} if envs else set())
    assert resp == _responses(server)
    data = read_data(local / "data")  # the forgetting check scores general samples D_gen does not train on
    assert set(resp["general_replay"]) == {s.id for s in data["general_eval"]}
    assert not set(resp["general_replay"]) & {s.id for s in data["general"]}
    figures = [read_json(r / "eval" / "base" / "results.json")["metaloop"] for r in (local, server)]
    assert figures[0]["heldout"] == figures[1]["heldout"] and figures[0]["general"] == figures[1]["general"]
    assert figures[0].get("closed_loop") == figures[1].get("closed_loop")
    assert set(figures[0].get("closed_loop") or {}) == ({"TabletopPick-v0"} if envs else set())
    values = [read_json(r / "state.json")["values"]["k1/difficulty"] for r in (local, server)]
    assert values[0]["engine"] == "local" and values[1]["engine"] == "server"
    assert values[1]["failed_rollouts"] == 0
