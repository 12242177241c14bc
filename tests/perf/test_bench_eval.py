"""Performance benchmarks of the evaluation harness (run: `make bench`, or
`.venv/bin/pytest -m bench --benchmark-enable --benchmark-only tests/benchmarks/test_bench_eval.py`).

Targets (issue #5): harness overhead per sample with an instant fake backend <= 2 ms; the `openai` backend against
a local server with a fixed 50 ms latency reaches >= 5x the throughput of concurrency 1 at concurrency 8.
"""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import pytest

from benchmarks.backends.fake import FakeBackend
from benchmarks.backends.openai import OpenAIBackend
from benchmarks.runner import RunSettings, run
from benchmarks.task import TaskManager
from tests.benchmarks import fixtures as fx
from tests.helpers.fake_openai_server import FakeOpenAIServer

pytestmark = pytest.mark.bench

N_SAMPLES = 400


def _erqa(root: Path, n: int) -> Path:
    """An ERQA folder with ``n`` questions, each with one small JPEG."""
    rows = []
    for i in range(n):
        img = fx.save_image(root / "images" / f"ex{i + 1}_img1.jpg", color=(i % 255, 80, 160))
        rows.append({"question": f"Which way? A. left B. right C. up D. down ({i})", "answer": "ABCD"[i % 4],
                     "question_type": "Trajectory Reasoning", "visual_indices": [0],
                     "images": [str(img.relative_to(root))]})
    fx.write_jsonl(root / "erqa.jsonl", rows)
    return root


def test_bench_harness_overhead_per_sample(benchmark, tmp_path: Path) -> None:
    data = tmp_path / "data"
    _erqa(data / "erqa", N_SAMPLES)
    sels = TaskManager().resolve("erqa")
    counter = itertools.count()

    def setup():
        out = tmp_path / f"out{next(counter)}"
        return (out,), {}

    def once(out: Path) -> None:
        res = run(sels, FakeBackend("<think>left</think><answer>A</answer>"),
                  RunSettings(out=out, data_root=data, progress=False))
        assert res["erqa"]["n"] == N_SAMPLES

    benchmark.pedantic(once, setup=setup, rounds=5, iterations=1)
    per_sample_ms = benchmark.stats.stats.mean / N_SAMPLES * 1000
    benchmark.extra_info.update(samples=N_SAMPLES, per_sample_ms=round(per_sample_ms, 3), target_ms=2.0)
    for p in tmp_path.glob("out*"):
        shutil.rmtree(p, ignore_errors=True)


@pytest.mark.parametrize("concurrency", [1, 8])
def test_bench_openai_throughput(benchmark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, concurrency: int
                                 ) -> None:
    # Like uvicorn/vLLM, answer with TCP_NODELAY: the stdlib test server otherwise writes headers and body in two
    # segments and the client's delayed ACK adds ~40 ms to every request.
    from tests.helpers import fake_openai_server

    monkeypatch.setattr(fake_openai_server._Handler, "disable_nagle_algorithm", True, raising=False)
    n = 32
    data = tmp_path / "data"
    _erqa(data / "erqa", n)
    sels = TaskManager().resolve("erqa")
    counter = itertools.count()
    with FakeOpenAIServer(responder=lambda r: "A", latency_s=0.05) as srv:
        backend = OpenAIBackend("fake-model", base_url=srv.url, concurrency=concurrency)

        def setup():
            return (tmp_path / f"out{next(counter)}",), {}

        def once(out: Path) -> None:
            res = run(sels, backend, RunSettings(out=out, data_root=data, progress=False))
            assert res["erqa"]["n_failed"] == 0

        benchmark.pedantic(once, setup=setup, rounds=3, iterations=1)
        backend.close()
    rate = n / benchmark.stats.stats.mean
    benchmark.extra_info.update(concurrency=concurrency, samples=n, latency_s=0.05, samples_per_s=round(rate, 2))


def test_bench_score_sample_mcq(benchmark) -> None:
    """dppo_embodied.metrics.score_sample on one mcq completion (called per completion in GRPO): target < 50 us."""
    from dppo_embodied.metrics import score_sample
    from dppo_embodied.types import EmbodiedSample

    sample = EmbodiedSample(id="b/0", source="bench", question="Which object is closest to the gripper?", answer="B",
                            answer_type="mcq", options=["red block", "blue ball", "green cup", "yellow plate"])
    text = "<think>The blue ball is right under the gripper, the block is further left.</think><answer>B</answer>"
    score = benchmark(score_sample, sample, text)
    assert score.success and score.format_ok
    benchmark.extra_info.update(target_us=50)
