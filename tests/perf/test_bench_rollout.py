"""Performance benchmark of the rollout engines on SR estimation (run: `make bench`, or
`.venv/bin/pytest -m bench --benchmark-enable --benchmark-only -s tests/perf/test_bench_rollout.py`).

Issue #13: the throughput of difficulty estimation (T = 4 sampled rollouts of 64 candidates, up to 64 new tokens,
the tiny Qwen2.5-VL, 64 x 64 images) with the ``local`` engine (transformers generate in this process, batch 32)
against the ``server`` engine with one ``dppo serve`` replica and with two. Every process computes with one torch
thread: on this shared 2-core machine two OpenMP threads per process spin against the other jobs and run several
times slower than one. Server start-up (a few seconds per launch) is reported apart and not timed: a run
launches once per checkpoint. Reported per engine: rollouts/s, generated tokens/s (the texts re-tokenized) and the
ratio to ``local``; one round each (the machine is shared: read the figures with its load).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.bench, pytest.mark.network]

CANDIDATES, ROLLOUTS, MAX_NEW_TOKENS, BATCH = 64, 4, 64, 32
RESULTS: dict[str, dict[str, Any]] = {}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from inference.tiny_vlm import build_tiny_vlm
    from tests.training.synthetic import generate

    tmp = tmp_path_factory.mktemp("rollout_bench")
    return {"model": str(build_tiny_vlm(tmp / "tiny", size="tiny", seed=0)),
            "samples": generate(n=CANDIDATES, seed=0, out_dir=str(tmp / "img"))}


def _engine(name: str, model: str, run_dir: Path) -> Any:
    from inference.policy import VLMPolicy
    from training.algorithm.rollout_config import RolloutSettings, ServerSettings
    from training.algorithm.rollout_engine import RolloutEngine

    if name == "local":
        return RolloutEngine.in_process(VLMPolicy.from_pretrained(model, batch_size=BATCH), batch_size=BATCH)
    replicas = int(name.split("-")[1])
    server = ServerSettings(kind="dppo", replicas=replicas, gpus_per_replica=0, threads=1,
                            batch_size=BATCH, port_base=8300)
    engine = RolloutEngine(RolloutSettings(engine="server", server=server, concurrency=BATCH, journal=False),
                           run_dir, max_tokens=MAX_NEW_TOKENS)
    engine.use(model)
    return engine


@pytest.mark.parametrize("name", ["local", "server-1", "server-2"])
def test_bench_sr_estimation(benchmark: Any, setup: dict[str, Any], tmp_path: Path, name: str) -> None:
    import torch
    from transformers import AutoTokenizer

    from dppo_embodied.media import MediaLoader
    from training.algorithm.difficulty import QARoller, estimate_success_rates

    torch.set_num_threads(1)  # every engine computes with one thread per process (see the module docstring)
    t0 = time.perf_counter()
    engine = _engine(name, setup["model"], tmp_path)
    startup = time.perf_counter() - t0
    roller = QARoller(engine, MediaLoader(), MAX_NEW_TOKENS, return_texts=True)
    try:
        roller(setup["samples"][:2], 1, 1.0)  # warm-up: first batch, connections
        table = benchmark.pedantic(lambda: estimate_success_rates(setup["samples"], roller, ROLLOUTS, 1.0,
                                                                  progress=False), rounds=1, iterations=1)
    finally:
        engine.stop()
    assert len(table) == CANDIDATES and all(r.n == ROLLOUTS and r.failed == 0 for r in table.values())
    tok = AutoTokenizer.from_pretrained(setup["model"])
    tokens = sum(len(tok(t, add_special_tokens=False).input_ids) for ts in roller.last_texts.values() for t in ts)
    seconds = benchmark.stats.stats.mean
    res = {"rollouts_per_s": round(CANDIDATES * ROLLOUTS / seconds, 2), "tokens_per_s": round(tokens / seconds, 1),
           "seconds": round(seconds, 2), "startup_s": round(startup, 2), "load_1min": round(os.getloadavg()[0], 2)}
    RESULTS[name] = res
    if "local" in RESULTS:
        res["ratio_to_local"] = round(res["rollouts_per_s"] / RESULTS["local"]["rollouts_per_s"], 2)
    benchmark.extra_info.update(engine=name, candidates=CANDIDATES, rollouts=ROLLOUTS,
                                max_new_tokens=MAX_NEW_TOKENS, **res)
    print(f"\n{name}: {res}")
