"""The runner with the instant fake backend: outputs, bad input, resume after a torn write, sharding, order."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from benchmarks.backends.base import Backend, ResultCallback
from benchmarks.backends.fake import FakeBackend
from benchmarks.data import DatasetLayoutError
from benchmarks.records import read_records
from benchmarks.runner import RunSettings, run
from benchmarks.task import TaskManager
from dppo_embodied.generation import ChatRequest
from tests.benchmarks import fixtures as fx

TM = TaskManager()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    fx.make_erqa(root / "erqa", missing_image=True)
    fx.make_where2place(root / "where2place")
    fx.make_mvbench(root / "mvbench", videos=True)
    fx.make_egoschema(root / "egoschema_subset", videos=True)
    return root


def _settings(out: Path, data: Path, **kw) -> RunSettings:
    return RunSettings(out=out, data_root=data, progress=False, frames=4, **kw)


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def test_run_writes_samples_and_results(tmp_path: Path, data: Path) -> None:
    out = tmp_path / "out"
    seen: list[ChatRequest] = []

    def responder(r: ChatRequest) -> str:
        seen.append(r)
        return "<think>the door opens first</think><answer>A</answer>"

    res = run(TM.resolve("mvbench_action_sequence,mvbench_action_count,where2place"),
              FakeBackend(responder=responder), _settings(out, data))
    assert set(res) == {"mvbench", "where2place"}
    rows = _lines(out / "mvbench" / "samples.jsonl")
    assert [r["id"] for r in rows] == [f"action_sequence/{i}" for i in range(3)] + [f"action_count/{i}"
                                                                                    for i in range(3)]
    for key in ("id", "prompt", "response", "parsed", "score", "capabilities", "error"):
        assert key in rows[0]
    assert rows[0]["prompt"].startswith("Question:What happened 0?\nOption:\n(A) open the door\n")
    assert [r["score"] for r in rows] == [1.0, 0.0, 0.0, 1.0, 0.0, 0.0]
    assert all(len(r.conversation.images) == 4 for r in seen if r.id.startswith("action"))  # 4 sampled frames per clip
    data_json = json.loads((out / "results.json").read_text())
    mv = data_json["tasks"]["mvbench"]
    assert mv["overall"] == pytest.approx(100 / 3)
    assert set(mv["subtasks"]) == {"mvbench_action_sequence", "mvbench_action_count"}
    assert mv["capabilities"]["temporal_sequential"] == pytest.approx(100 / 3)
    assert data_json["capabilities"]["temporal_sequential"]["tasks"] == {"mvbench": pytest.approx(100 / 3)}
    assert "| mvbench |" in (out / "results.md").read_text()


def test_bad_input_is_recorded_and_counted(tmp_path: Path, data: Path) -> None:
    (data / "erqa" / "erqa.jsonl").open("a").write("{not json\n")
    (data / "mvbench" / "video" / "star" / "Charades_segment" / "action_sequence_1.mp4").write_bytes(b"garbage")
    out = tmp_path / "out"
    res = run(TM.resolve("erqa,mvbench_action_sequence"), FakeBackend("A"), _settings(out, data))
    erqa = res["erqa"]
    assert erqa["n"] == 4 and erqa["n_failed"] == 2
    reasons = {f["id"]: f["error"] for f in erqa["failures"]}
    assert "does not exist" in reasons["erqa/1"] and "malformed" in reasons["erqa/3"]
    assert erqa["overall"] == pytest.approx(25.0)  # erqa/0 right; failures count as wrong
    mv = res["mvbench"]
    assert mv["n_failed"] == 1 and "video" in mv["failures"][0]["error"]
    summary = json.loads((out / "results.json").read_text())["summary"]
    assert summary["failed"] == 3
    assert "## Failures" in (out / "results.md").read_text()


def test_missing_dataset_folder_names_the_layout(tmp_path: Path) -> None:
    with pytest.raises(DatasetLayoutError, match=r"erqa\.jsonl.*images/ex<i>_img<j>\.jpg"):
        run(TM.resolve("erqa"), FakeBackend("A"), _settings(tmp_path / "out", tmp_path / "nowhere"))


def test_backend_errors_become_failed_samples(tmp_path: Path, data: Path) -> None:
    def responder(r: ChatRequest) -> str:
        if r.id == "erqa/2":
            raise RuntimeError("server exploded")
        return "A"

    res = run(TM.resolve("erqa"), FakeBackend(responder=responder), _settings(tmp_path / "out", data))
    reasons = {f["id"]: f["error"] for f in res["erqa"]["failures"]}
    assert reasons["erqa/2"].startswith("backend: RuntimeError: server exploded")
    calls: list[str] = []
    again = run(TM.resolve("erqa"), FakeBackend(responder=lambda r: calls.append(r.id) or "C"),
                _settings(tmp_path / "out", data))
    assert calls == ["erqa/2"]  # backend failures are retried on a re-run; the missing image is not
    assert [f["id"] for f in again["erqa"]["failures"]] == ["erqa/1"]


def test_resume_after_torn_write_gives_same_results(tmp_path: Path, data: Path) -> None:
    out = tmp_path / "out"
    sels = TM.resolve("mvbench_action_sequence,mvbench_action_count")
    calls: list[str] = []

    def responder(r: ChatRequest) -> str:
        calls.append(r.id)
        return "B" if r.id.endswith("1") else "(A)"

    first = run(sels, FakeBackend(responder=responder), _settings(out, data))
    samples = out / "mvbench" / "samples.jsonl"
    full = samples.read_bytes()
    # simulate kill -9 while writing: keep 3 whole lines and half of the 4th
    lines = full.split(b"\n")
    samples.write_bytes(b"\n".join(lines[:3]) + b"\n" + lines[3][: len(lines[3]) // 2])
    (out / "results.json").unlink()
    calls.clear()
    second = run(sels, FakeBackend(responder=responder), _settings(out, data))
    assert sorted(calls) == sorted(json.loads(x)["id"] for x in lines[3:] if x)  # only the lost samples re-ran
    ids = [r["id"] for r in _lines(samples)]
    assert len(ids) == len(set(ids)) == 6
    assert second["mvbench"]["overall"] == first["mvbench"]["overall"]
    assert second["mvbench"]["subtasks"] == first["mvbench"]["subtasks"]
    calls.clear()
    run(sels, FakeBackend(responder=responder), _settings(out, data))
    assert calls == []  # everything finished: nothing runs again


def test_sharded_ranks_merge(tmp_path: Path, data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    sels = TM.resolve("mvbench_action_sequence,mvbench_action_count")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert run(sels, FakeBackend("A"), _settings(out, data)) == {}
    rank1 = read_records(out / "mvbench" / "samples.rank1.jsonl")
    assert sorted(rank1) == ["action_count/0", "action_count/2", "action_sequence/1"]
    monkeypatch.setenv("RANK", "0")
    res = run(sels, FakeBackend("A"), _settings(out, data))
    assert res["mvbench"]["n"] == 6
    assert not list((out / "mvbench").glob("samples.rank*")) and not list((out / "mvbench").glob(".rank*"))
    assert len(_lines(out / "mvbench" / "samples.jsonl")) == 6


class ReversedBackend(Backend):
    """Reports results in reverse order (like concurrent requests finishing out of order)."""

    name = "reversed"

    def generate(self, requests: Sequence[ChatRequest], on_result: ResultCallback) -> None:
        for i in reversed(range(len(requests))):
            on_result(i, "no idea")


def test_scores_do_not_depend_on_completion_order(tmp_path: Path, data: Path) -> None:
    a = run(TM.resolve("egoschema_subset"), FakeBackend("no idea"), _settings(tmp_path / "a", data))
    b = run(TM.resolve("egoschema_subset"), ReversedBackend(), _settings(tmp_path / "b", data))
    pa = [r["parsed"] for r in _lines(tmp_path / "a" / "egoschema_subset" / "samples.jsonl")]
    pb = [r["parsed"] for r in _lines(tmp_path / "b" / "egoschema_subset" / "samples.jsonl")]
    assert pa == pb and a["egoschema_subset"]["overall"] == b["egoschema_subset"]["overall"]
    assert a["egoschema_subset"]["details"]["random_fallbacks"] == 3


def test_limit_and_scorer_option_override(tmp_path: Path, data: Path) -> None:
    res = run(TM.resolve("mvbench_action_sequence"), FakeBackend(responder=lambda r: ""),
              _settings(tmp_path / "out", data, limit=2, scorer_options={"mvbench": {"empty": "wrong"}}))
    assert res["mvbench"]["n"] == 2 and res["mvbench"]["overall"] == 0.0
    assert res["mvbench"]["scorer_options"]["empty"] == "wrong"


def test_any_error_loading_one_docs_media_fails_that_doc_alone(tmp_path: Path, data: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import benchmarks.runner as runner

    real = runner.render_sample

    def flaky(doc, loader):  # type: ignore[no-untyped-def]
        if doc.id == "erqa/2":
            raise MemoryError("decoder ran out of memory")
        return real(doc, loader)

    monkeypatch.setattr(runner, "render_sample", flaky)
    res = run(TM.resolve("erqa"), FakeBackend("A"), _settings(tmp_path / "out", data))
    reasons = {f["id"]: f["error"] for f in res["erqa"]["failures"]}
    assert reasons["erqa/2"] == "media: MemoryError: decoder ran out of memory"
    assert set(reasons) == {"erqa/1", "erqa/2"} and res["erqa"]["n"] == 3  # erqa/1: its image is missing
