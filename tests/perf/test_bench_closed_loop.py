"""Performance benchmark of concurrent closed-loop episodes (run: `make bench`, or
`.venv/bin/pytest -m bench --benchmark-enable --benchmark-only tests/perf/test_bench_closed_loop.py`).

Target (issue #12): with the `openai` backend and a local server answering each request after 50 ms, 8 episodes
at once reach >= 5x the episodes/s of one at a time. The episodes are `dppo/TabletopPick-v0` capped at 4 decisions,
the server answering with a reply the env refuses (cheap env steps, so the figure measures the harness and the
overlap of requests, not physics). Each round builds its env instances anew (one per episode thread), which is part
of the measured time; on a machine without a GPU the first render of each instance (software GL) costs ~0.5 s of
CPU, so the rate per episode once the instances exist is read off two run lengths: (64 - 16) / (t64 - t16).
"""

from __future__ import annotations

import itertools
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks.backends.openai import OpenAIBackend
from benchmarks.closed_loop import run_closed_loop
from benchmarks.settings import RunSettings
from benchmarks.task import Selection, TaskManager
from tests.helpers.fake_openai_server import FakeOpenAIServer

pytestmark = [pytest.mark.bench, pytest.mark.mujoco]

STEPS = 4


def _selection(n: int) -> Selection:
    spec = TaskManager().get("tabletop_closed_loop")
    return Selection(replace(spec, adapter_options={**spec.adapter_options, "seeds": n, "max_steps": STEPS}),
                     ("pick",))


@pytest.mark.parametrize("episodes", [16, 64])
@pytest.mark.parametrize("parallel", [1, 8])
def test_bench_closed_loop_episodes(benchmark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parallel: int,
                                    episodes: int) -> None:
    pytest.importorskip("mujoco")
    from tests.helpers import fake_openai_server

    # like uvicorn/vLLM, answer with TCP_NODELAY (the stdlib server otherwise adds a delayed-ACK ~40 ms)
    monkeypatch.setattr(fake_openai_server._Handler, "disable_nagle_algorithm", True, raising=False)
    sel = _selection(episodes)
    counter = itertools.count()
    with FakeOpenAIServer(responder=lambda r: "I am not sure yet.", latency_s=0.05) as srv:
        backend = OpenAIBackend("fake-model", base_url=srv.url, concurrency=8)

        def setup():
            return (tmp_path / f"out{next(counter)}",), {}

        def once(out: Path) -> None:
            entry = run_closed_loop(sel, backend, RunSettings(out=out, progress=False, parallel_episodes=parallel))
            assert entry["n"] == episodes and entry["n_failed"] == 0

        benchmark.pedantic(once, setup=setup, rounds=2, iterations=1)
        requests = len(srv.chat_requests)
        backend.close()
    assert requests == 2 * episodes * STEPS
    rate = episodes / benchmark.stats.stats.mean
    benchmark.extra_info.update(parallel=parallel, episodes=episodes, decisions_per_episode=STEPS, latency_s=0.05,
                                episodes_per_s=round(rate, 2))
    for p in tmp_path.glob("out*"):
        shutil.rmtree(p, ignore_errors=True)
