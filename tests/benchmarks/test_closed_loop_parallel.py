"""Concurrent closed-loop episodes: several env instances, decisions sent to the backend together; the records,
scores and resume behaviour are the same as one episode at a time."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest

from benchmarks.backends.base import ResultCallback
from benchmarks.backends.fake import FakeBackend
from benchmarks.closed_loop import Decisions
from benchmarks.runner import RunSettings, run
from benchmarks.task import TaskManager
from dppo_embodied.errors import ConfigError
from dppo_embodied.generation import ChatRequest

pytestmark = pytest.mark.mujoco

SEEDS = 6


class Scripted:
    """Wrong replies first (seed % 3 of them), then the pick the instruction asks for: episodes of 1-3 steps, so
    parallel episodes finish out of dataset order."""

    def __init__(self) -> None:
        self.steps: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.threads: set[str] = set()

    def __call__(self, r: ChatRequest) -> str:
        with self.lock:
            self.steps[r.id] += 1
            k = self.steps[r.id]
            self.threads.add(threading.current_thread().name)
        if k <= int(r.id.rsplit("seed", 1)[1]) % 3:
            return "I am not sure yet."
        m = re.search(r"Task: Pick up the (\w+) (\w+)\.", r.conversation.text)
        assert m is not None
        return json.dumps({"action": {"type": "skill", "name": "pick", "object": f"{m.group(1)}_{m.group(2)}"}})


class Batching(FakeBackend):
    """A backend that must not be called from two threads at once (like hf) and takes a while per call (like a
    batched forward pass): records each batch's size."""

    thread_safe = False

    def __init__(self, responder: Scripted) -> None:
        super().__init__(responder=responder)
        self.batches: list[int] = []
        self.inside = 0
        self.lock = threading.Lock()

    def generate(self, requests: Sequence[ChatRequest], on_result: ResultCallback) -> None:
        with self.lock:
            self.inside += 1
            assert self.inside == 1, "generate was entered by two threads at once"
        try:
            self.batches.append(len(requests))
            time.sleep(0.2)  # while this batch "generates", the other episodes' decisions queue up
            super().generate(requests, on_result)
        finally:
            with self.lock:
                self.inside -= 1


def _rows(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "tabletop_closed_loop" / "samples.jsonl").read_text().splitlines()]


def _run(out: Path, backend: FakeBackend, parallel: int) -> dict:
    pytest.importorskip("mujoco")
    sels = TaskManager().resolve("tabletop_closed_loop_pick")
    return run(sels, backend, RunSettings(out=out, progress=False, limit=SEEDS, parallel_episodes=parallel))


def test_parallel_episodes_give_the_same_records_as_one_at_a_time(tmp_path: Path) -> None:
    one = _run(tmp_path / "one", FakeBackend(responder=Scripted()), 1)["tabletop_closed_loop"]
    script = Scripted()
    many = _run(tmp_path / "many", FakeBackend(responder=script), 4)["tabletop_closed_loop"]
    assert len(script.threads) > 1  # decisions came from several episode threads
    assert one["overall"] == many["overall"] == 100.0 and one["n"] == many["n"] == SEEDS
    rows_one, rows_many = _rows(tmp_path / "one"), _rows(tmp_path / "many")
    assert [r["id"] for r in rows_many] == [f"pick/seed{s}" for s in range(1000, 1000 + SEEDS)]  # dataset order
    assert rows_one == rows_many  # prompts, actions, summaries: identical
    assert {json.loads(r["response"])["steps"] for r in rows_many} == {1, 2, 3}


def test_a_backend_that_is_not_thread_safe_gets_batches_one_at_a_time(tmp_path: Path) -> None:
    backend = Batching(Scripted())
    entry = _run(tmp_path / "b", backend, 4)["tabletop_closed_loop"]
    assert entry["overall"] == 100.0 and entry["n"] == SEEDS
    assert sum(backend.batches) == sum(json.loads(r["response"])["steps"] for r in _rows(tmp_path / "b"))
    assert max(backend.batches) > 1  # waiting decisions of several episodes went together
    assert _rows(tmp_path / "b") == _rows_of_sequential(tmp_path)


def _rows_of_sequential(tmp_path: Path) -> list[dict]:
    _run(tmp_path / "seq", FakeBackend(responder=Scripted()), 1)
    return _rows(tmp_path / "seq")


def test_resume_after_a_partial_parallel_run_runs_only_the_rest(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _run(out, FakeBackend(responder=Scripted()), 4)
    path = out / "tabletop_closed_loop" / "samples.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:2]) + "\n" + lines[2][:10])  # two episodes kept, a torn third line
    script = Scripted()
    again = _run(out, FakeBackend(responder=script), 4)["tabletop_closed_loop"]
    assert set(script.steps) == {f"pick/seed{s}" for s in range(1002, 1000 + SEEDS)}
    assert again["n"] == SEEDS and again["overall"] == 100.0
    assert _rows(out) == _rows_of_sequential(tmp_path)


def test_backend_errors_fail_their_episode_only(tmp_path: Path) -> None:
    script = Scripted()

    def flaky(r: ChatRequest) -> str:
        if r.id == "pick/seed1001":
            raise RuntimeError("server went away")
        return script(r)

    entry = _run(tmp_path / "f", FakeBackend(responder=flaky), 3)["tabletop_closed_loop"]
    rows = {r["id"]: r for r in _rows(tmp_path / "f")}
    assert "backend failed during the episode" in rows["pick/seed1001"]["error"]
    assert entry["n"] == SEEDS and entry["n_failed"] == 1 and entry["overall"] == pytest.approx(500 / 6)


def test_decisions_report_a_broken_backend_to_every_waiting_episode() -> None:
    class Broken(FakeBackend):
        thread_safe = False

        def generate(self, requests: Sequence[ChatRequest], on_result: ResultCallback) -> None:
            raise OSError("device lost")

    from dppo_embodied.conversation import Conversation
    from dppo_embodied.generation import GenerationSettings

    d = Decisions(Broken())
    res = d.ask(ChatRequest(Conversation(text="hi"), GenerationSettings(max_tokens=4), "x"))
    assert isinstance(res, OSError) and "device lost" in str(res)


def test_parallel_episodes_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--parallel-episodes must be >= 1"):
        RunSettings(out=tmp_path, parallel_episodes=0)


def test_episode_queue_keeps_workers_on_the_envs_they_hold() -> None:
    from benchmarks.closed_loop import EpisodeQueue
    from benchmarks.doc import Doc

    docs = [Doc(id=f"{e}/{s}", task="t", prompt="", meta={"env_id": e, "seed": s}) for e in "ab" for s in range(3)]
    q = EpisodeQueue(docs)
    first = q.next(set())
    second = q.next(set())  # a second worker without instances goes to the env fewest workers hold
    assert first is not None and second is not None
    assert (first.id, second.id) == ("a/0", "b/0")
    assert [q.next({"a"}).id for _ in range(2)] == ["a/1", "a/2"]  # dataset order within an env
    assert q.drained("a") and not q.drained("b")
    assert q.next({"a"}).id == "b/1"  # nothing of "a" left: takes "b"


def test_two_envs_in_parallel_build_few_instances_and_match_sequential(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("mujoco")
    import benchmarks.closed_loop as cl

    built: list[str] = []
    real = cl._make_env

    def counting(env_id: str, kwargs: dict) -> object:
        built.append(env_id)
        return real(env_id, kwargs)

    monkeypatch.setattr(cl, "_make_env", counting)
    sels = TaskManager().resolve("tabletop_closed_loop_pick,tabletop_closed_loop_push")

    def replies(r: ChatRequest) -> str:
        return "I am not sure yet." if "push" in r.id else Scripted()(r)

    a = run(sels, FakeBackend(responder=replies),
            RunSettings(out=tmp_path / "a", progress=False, limit=4, parallel_episodes=1))["tabletop_closed_loop"]
    assert sorted(built) == ["dppo/TabletopPick-v0", "dppo/TabletopPush-v0"]
    built.clear()
    b = run(sels, FakeBackend(responder=replies),
            RunSettings(out=tmp_path / "b", progress=False, limit=4, parallel_episodes=3))["tabletop_closed_loop"]
    assert 2 <= len(built) <= 6  # at most one instance per worker and env, each closed by its own thread
    assert a["subtasks"] == b["subtasks"] and _rows(tmp_path / "a") == _rows(tmp_path / "b")
