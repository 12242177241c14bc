"""End to end: `dppo eval run` with the tiny VLM on `hf`, with `openai` against a local server, and a real kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.cli import main
from dppo_embodied.cli import main as dppo_main
from tests.benchmarks import fixtures as fx
from tests.helpers.fake_openai_server import FakeOpenAIServer, image_urls, last_user_text

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    fx.make_erqa(root / "erqa")
    fx.make_mvbench(root / "mvbench", videos=True)
    fx.make_emb_spatial(root / "emb_spatial_bench")
    return root


def _results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


def test_hf_backend_with_tiny_vlm(tiny_vlm_path: Path, data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    rc = main(["run", "--model", str(tiny_vlm_path), "--backend", "hf", "--tasks", "erqa,mvbench_action_sequence",
               "--data-root", str(data), "--out", str(out), "--limit", "2", "--frames", "2", "--max-new-tokens", "4",
               "--batch-size", "2", "--device", "cpu", "--no-progress"])
    assert rc == 0
    res = _results(out)
    for task in ("erqa", "mvbench"):
        entry = res["tasks"][task]
        assert entry["n"] == 2 and entry["n_failed"] == 0
        rows = [json.loads(x) for x in (out / task / "samples.jsonl").read_text().splitlines()]
        assert all(isinstance(r["response"], str) for r in rows)
    assert res["run"]["backend"] == "hf"


def test_openai_backend_against_local_server(data: Path, tmp_path: Path) -> None:
    def responder(req: dict) -> str:
        text = last_user_text(req)
        return "<think>looking</think><answer>A</answer>" if "Which way" in text else "A"

    out = tmp_path / "out"
    with FakeOpenAIServer(responder=responder) as srv:
        rc = dppo_main(["eval", "run", "--model", "fake-model", "--backend", "openai", "--base-url", srv.url,
                        "--tasks", "erqa,emb_spatial_bench,mvbench_action_sequence", "--data-root", str(data),
                        "--out", str(out), "--concurrency", "4", "--frames", "3", "--no-progress"])
        reqs = [r["json"] for r in srv.chat_requests]
    assert rc == 0
    res = _results(out)
    assert res["tasks"]["erqa"]["overall"] == pytest.approx(100 / 3)  # answers A, B, C; always "A"
    assert res["tasks"]["emb_spatial_bench"]["overall"] == pytest.approx(100 / 3)
    assert res["tasks"]["mvbench"]["overall"] == pytest.approx(100 / 3)
    assert len(reqs) == 3 + 3 + 3
    video_reqs = [r for r in reqs if "Question:" in last_user_text(r)]
    assert len(video_reqs) == 3 and all(len(image_urls(r)) == 3 for r in video_reqs)
    content = video_reqs[0]["messages"][-1]["content"]
    assert content[0]["type"] == "image_url" and content[-1]["type"] == "text"  # images before the text


def test_openai_server_errors_become_failed_samples(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with FakeOpenAIServer(responder=lambda r: "A", mode="error500") as srv:
        rc = main(["run", "--model", "m", "--backend", "openai", "--base-url", srv.url, "--tasks", "erqa",
                   "--data-root", str(data), "--out", str(out), "--no-progress", "--config",
                   str(fx.write_json(tmp_path / "c.yaml", {"backend_options": {"max_retries": 0}}))])
    assert rc == 0
    entry = _results(out)["tasks"]["erqa"]
    assert entry["n_failed"] == 3 and "HTTP 500" in entry["failures"][0]["error"]


def test_kill_9_then_resume_gives_same_results_without_duplicates(data: Path, tmp_path: Path) -> None:
    """A real `kill -9` of a running `dppo eval run`, then the same command again."""
    fx.make_mvbench(data / "mvbench")  # the 6 questions are enough; videos are not needed for this run

    def responder(req: dict) -> str:
        return "B" if "(1)" in last_user_text(req) else "A"

    out = tmp_path / "out"
    with FakeOpenAIServer(responder=responder, latency_s=0.3) as srv:
        cmd = [sys.executable, "-m", "benchmarks.cli", "run", "--model", "m", "--backend", "openai", "--base-url",
               srv.url, "--tasks", "erqa,emb_spatial_bench", "--data-root", str(data), "--out", str(out),
               "--concurrency", "1", "--no-progress"]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples = out / "erqa" / "samples.jsonl"
        t_end = time.monotonic() + 60
        while time.monotonic() < t_end and (not samples.exists() or samples.read_text().count("\n") < 1):
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        partial = samples.read_text().count("\n")
        assert 1 <= partial < 3 and not (out / "results.json").exists()
        n_before = len(srv.chat_requests)
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert len(srv.chat_requests) - n_before == 6 - partial  # finished samples were not asked again
    rows = [json.loads(x) for x in samples.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["erqa/0", "erqa/1", "erqa/2"]
    res = _results(out)
    assert res["tasks"]["erqa"]["overall"] == pytest.approx(200 / 3)  # A right, "B" right, "A" wrong
    assert res["tasks"]["emb_spatial_bench"]["n"] == 3


def test_eval_registered_in_dppo_cli(capsys: pytest.CaptureFixture) -> None:
    assert dppo_main(["eval", "tasks"]) == 0
    out = capsys.readouterr().out
    assert "pelican" in out and "mvbench" in out and "ref_spatial_bench" in out


def _hostile_tabletop(root: Path) -> Path:
    """tabletop_qa samples: good ones, a 109 kB 30000 x 30000 PNG, a line with a non-UTF-8 byte, a truncated JPEG, a
    repeated id."""
    img = root / "img"
    fx.save_image(img / "ok.png")
    (img / "bomb.png").write_bytes(fx.bomb_png())
    (img / "trunc.jpg").write_bytes(fx.truncated_jpeg())

    def row(i: int, image: str) -> bytes:
        return json.dumps({"id": f"qa/{i}", "source": "s", "question": "How many blocks?", "answer": 2,
                           "answer_type": "count", "images": [f"img/{image}"]}).encode()

    lines = [row(0, "ok.png"), row(1, "bomb.png"), b'{"id": "qa/2", "question": "caf\xe9"}', row(3, "trunc.jpg"),
             row(0, "ok.png"), row(4, "ok.png")]
    (root / "heldout.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    return root


def test_hostile_data_fails_per_sample_and_the_run_resumes(data: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A decompression bomb, a non-UTF-8 line, a truncated JPEG and a duplicate id each fail their own sample with
    the reason; the run (two tasks) exits 0, writes results.json, and the same command again resumes cleanly."""
    from benchmarks.backends import fake

    _hostile_tabletop(data / "tabletop_qa")
    (data / "erqa" / "images" / "ex2_img1.jpg").write_bytes(fx.bomb_png())  # an image of another task too
    calls: list[str] = []

    class Counting(fake.FakeBackend):
        def generate(self, requests, on_result):  # type: ignore[no-untyped-def]
            calls.extend(r.id for r in requests)
            super().generate(requests, on_result)

    monkeypatch.setattr(fake, "FakeBackend", Counting)
    out = tmp_path / "out"
    cmd = ["run", "--model", "A", "--backend", "fake", "--tasks", "tabletop_qa,erqa", "--data-root", str(data),
           "--out", str(out), "--no-progress"]
    assert main(cmd) == 0
    first = _results(out)
    assert sorted(calls) == ["erqa/0", "erqa/2", "qa/0", "qa/4"]  # only the sound samples reach the model
    calls.clear()
    assert main(cmd) == 0  # re-run: everything is finished, nothing is asked again, nothing crashes
    assert calls == []
    def timeless(tasks: dict) -> dict:
        return {k: {f: v for f, v in t.items() if f != "duration_s"} for k, t in tasks.items()}

    assert timeless(_results(out)["tasks"]) == timeless(first["tasks"])  # the same figures; only timing differs
    entry = first["tasks"]["tabletop_qa"]
    reasons = {f["id"]: f["error"] for f in entry["failures"]}
    assert entry["n"] == 6 and entry["n_failed"] == 4
    assert "bomb.png" in reasons["qa/1"] and "decompression bomb" in reasons["qa/1"]
    assert "heldout.jsonl:3: malformed sample row: not UTF-8" in reasons["heldout/line3"]
    assert "trunc.jpg" in reasons["qa/3"] and "truncated" in reasons["qa/3"]
    assert "duplicate sample id 'qa/0'" in reasons["qa/0#dup2"]
    rows = {r["id"]: r for r in map(json.loads, (out / "tabletop_qa" / "samples.jsonl").read_text().splitlines())}
    assert set(rows) == {"qa/0", "qa/1", "heldout/line3", "qa/3", "qa/0#dup2", "qa/4"}
    assert rows["qa/1"]["error"] == reasons["qa/1"] and rows["qa/0"]["error"] is None
    erqa = {f["id"]: f["error"] for f in first["tasks"]["erqa"]["failures"]}
    assert list(erqa) == ["erqa/1"] and "decompression bomb" in erqa["erqa/1"]
