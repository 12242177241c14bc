"""The rollout engine: journals, failures with reasons, replicas over real OpenAI clients, the fleet's faults."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from benchmarks.backends.fake import FakeBackend
from dppo_embodied.conversation import Conversation
from dppo_embodied.errors import ConfigError, TrainingError
from dppo_embodied.generation import ChatRequest, GenerationSettings
from dppo_embodied.media import MediaLoader
from tests.helpers.fake_openai_server import FakeOpenAIServer, image_urls, last_user_text
from training.algorithm import rollout_servers
from training.algorithm.difficulty import QARoller, estimate_success_rates, failure_summary
from training.algorithm.rollout_config import RolloutSettings, ServerSettings
from training.algorithm.rollout_engine import RolloutEngine
from training.algorithm.rollout_journal import RolloutFailed, RolloutJournal
from training.algorithm.rollout_replicas import ReplicaBackend, StaticFleet
from training.algorithm.rollout_servers import ServerFleet, free_port

STUB = Path(__file__).with_name("replica_stub.py")


def _requests(texts: list[str]) -> list[ChatRequest]:
    return [ChatRequest(Conversation(t), GenerationSettings(max_tokens=8)) for t in texts]


def _engine(tmp_path: Path, backend=None, **kw) -> RolloutEngine:
    return RolloutEngine(RolloutSettings(**kw), tmp_path, backend=backend)


# ------------------------------------------------------------------------------------------------ journal
def test_journal_keeps_results_and_failures_and_sets_other_settings_aside(tmp_path: Path) -> None:
    folder = tmp_path / "rollouts" / "k1-difficulty"
    j = RolloutJournal(folder, rank=0, meta={"model": "ckpt/a", "temperature": 1.0})
    j.record("s1#0", "<answer>A</answer>")
    j.record("s1#1", RuntimeError("server said 500"))
    j.close()
    with (folder / "rank0.jsonl").open("a") as f:
        f.write('{"key": "s1#2", "te')  # a kill mid-line: not a result
    again = RolloutJournal(folder, rank=1, meta={"model": "ckpt/a", "temperature": 1.0})
    assert set(again.done) == {"s1#0", "s1#1"} and "s1#2" not in again
    assert again.get("s1#0") == "<answer>A</answer>"
    failed = again.get("s1#1")
    assert isinstance(failed, RolloutFailed) and "RuntimeError: server said 500" in str(failed)
    other = RolloutJournal(folder, rank=0, meta={"model": "ckpt/b", "temperature": 1.0})  # another checkpoint
    assert len(other) == 0 and (folder / "rank0.jsonl.stale-0").is_file()


def test_engine_sends_only_what_the_journal_lacks(tmp_path: Path) -> None:
    sent: list[str] = []

    def responder(req: ChatRequest) -> str:
        sent.append(req.conversation.text)
        return "reply to " + req.conversation.text

    engine = _engine(tmp_path, FakeBackend(responder=responder))
    j = engine.journal("k1/difficulty", model="m")
    reqs = _requests(["a", "b", "c"])
    assert engine.generate(reqs[:2], ["a#0", "b#0"], j) == ["reply to a", "reply to b"]
    j.close()
    j2 = engine.journal("k1/difficulty", model="m")  # a resumed step
    assert engine.generate(reqs, ["a#0", "b#0", "c#0"], j2) == ["reply to a", "reply to b", "reply to c"]
    assert sent == ["a", "b", "c"]  # nothing was asked twice
    assert (tmp_path / "rollouts" / "k1-difficulty" / "rank0.jsonl").is_file()


def test_failed_rollouts_count_as_failures_with_their_reason(tmp_path: Path, samples: list) -> None:
    bad = {samples[1].id}

    def responder(req: ChatRequest) -> str:
        if req.id in bad:
            raise RuntimeError("HTTP 500 from the server")
        return "<answer>x</answer>"

    engine = _engine(tmp_path, FakeBackend(responder=responder))
    roller = QARoller(engine, MediaLoader(), 8, journal=engine.journal("k1/difficulty"))
    table = estimate_success_rates(samples[:3], roller, rollouts=2, temperature=1.0, progress=False)
    assert table[samples[1].id].failed == 2 and table[samples[1].id].sr == 0.0
    assert "HTTP 500" in table[samples[1].id].failure and table[samples[0].id].failed == 0
    summary = failure_summary(table)
    assert summary["failed_rollouts"] == 2 and list(summary["failure_reasons"].values()) == [1]


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"rollout\.base_urls"):
        RolloutSettings(engine="openai", model="m")
    with pytest.raises(ConfigError, match=r"rollout\.server\.gpus"):
        ServerSettings(replicas=2, gpus_per_replica=2, gpus=[0, 1])
    with pytest.raises(ConfigError, match="gpus_per_replica"):
        ServerSettings(kind="vllm", gpus_per_replica=0)
    assert ServerSettings(replicas=2, gpus_per_replica=4).gpu_ids == list(range(8))


def test_vllm_replicas_sample_from_the_request_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    from inference.serving import vllm_launcher
    from training.algorithm import rollout_servers

    monkeypatch.setattr(vllm_launcher, "find_vllm", lambda: ["vllm"])
    cmd = rollout_servers.replica_command("vllm", ServerSettings(kind="vllm", extra_args=["--seed", "3"]), "/m",
                                          8000, dtype="bfloat16", max_pixels=None, max_tokens=64, timeout_s=60,
                                          on_gpu=True)
    # not the checkpoint's generation_config (an instruct model's top_k 1 would make every rollout greedy)
    assert cmd[cmd.index("--generation-config") + 1] == "vllm" and cmd[-2:] == ["--seed", "3"]


# ------------------------------------------------------------------------------------------------ replicas
def test_replicas_spread_requests_and_record_bad_answers(tmp_path: Path) -> None:
    def responder(req: dict):
        text = last_user_text(req)
        if "five-hundred" in text:
            raise RuntimeError("boom")  # the fake server answers 500 (retried by the SDK, then a failure)
        if "garbage" in text:
            return {"not": "a chat completion"}
        return f"ok {text} {len(image_urls(req))}"

    with FakeOpenAIServer(responder=responder) as a, FakeOpenAIServer(responder=responder) as b:
        backend = ReplicaBackend(StaticFleet([a.url, b.url], None), "fake-model", concurrency=2, max_retries=1)
        engine = _engine(tmp_path, backend)
        image = __import__("numpy").zeros((8, 8, 3), dtype="uint8")
        reqs = _requests([f"q{i}" for i in range(6)] + ["five-hundred", "garbage"])
        reqs[0] = ChatRequest(Conversation("q0", images=(image,)), reqs[0].settings)
        out = engine.generate(reqs)
        assert out[:6] == ["ok q0 1"] + [f"ok q{i} 0" for i in range(1, 6)]
        assert isinstance(out[6], RolloutFailed) and "500" in str(out[6])
        assert isinstance(out[7], RolloutFailed)
        assert a.chat_requests and b.chat_requests  # both replicas served
        sent = [image_urls(r["json"]) for r in a.chat_requests + b.chat_requests if image_urls(r["json"])]
        assert sent and all(u.startswith("data:image/png;base64,") for u in sent[0])  # lossless by default
        assert len([r for r in a.chat_requests + b.chat_requests if "five-hundred" in str(r["json"])]) == 2
        backend.close()


def test_seeded_rollouts_reach_the_servers_with_one_seed_each(tmp_path: Path, samples: list) -> None:
    def seeds(srv: FakeOpenAIServer) -> dict[str, list]:
        out: dict[str, list] = {}
        for r in srv.chat_requests:
            out.setdefault(last_user_text(r["json"]), []).append(r["json"].get("seed"))
        return out

    sent = []
    for seed in (7, 7, None):  # the same seed twice (a rerun), then unseeded
        with FakeOpenAIServer(responder=lambda req: "<answer>x</answer>") as srv:
            backend = ReplicaBackend(StaticFleet([srv.url], None), "fake-model", concurrency=2)
            roller = QARoller(_engine(tmp_path / str(len(sent)), backend), MediaLoader(), 8, seed=seed)
            roller(samples[:3], 3, 1.0)  # real openai clients, 3 sampled answers to each of 3 questions
            backend.close()
            sent.append(seeds(srv))
    first, rerun, unseeded = sent
    # each of a question's answers has its own seed, all distinct; a rerun sends the same ones; unseeded sends none
    assert len(first) == 3 and all(len(set(v)) == 3 and None not in v for v in first.values())
    assert len({x for v in first.values() for x in v}) == 9
    assert {k: sorted(v) for k, v in rerun.items()} == {k: sorted(v) for k, v in first.items()}
    assert all(v == [None] * 3 for v in unseeded.values())


def test_an_unreachable_fleet_fails_the_step_resumably(tmp_path: Path) -> None:
    port = free_port(20000)
    backend = ReplicaBackend(StaticFleet([f"http://127.0.0.1:{port}/v1"], None, wait_s=0.5), "m", max_retries=0)
    with pytest.raises(TrainingError, match="--resume"):
        _engine(tmp_path, backend).generate(_requests(["q"]))


def test_free_port_skips_a_port_in_use() -> None:
    port = free_port(21000)
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen(1)
        assert free_port(port) > port
        assert free_port(port, taken={port + 1}) not in (port, port + 1)


# ------------------------------------------------------------------------------------------------ the fleet
def _stub(monkeypatch: pytest.MonkeyPatch, *extra: str) -> None:
    def command(kind, settings, model_dir, port, **kw):
        return [sys.executable, str(STUB), "--port", str(port), *extra]

    monkeypatch.setattr(rollout_servers, "replica_command", command)


def _fleet(tmp_path: Path, **kw) -> ServerFleet:
    settings = ServerSettings(kind="dppo", gpus_per_replica=0, port_base=free_port(22000), **kw)
    return ServerFleet(settings, str(tmp_path / "ckpt"), tmp_path / "logs", dtype="float32", max_pixels=None,
                       max_tokens=8, timeout_s=30)


@pytest.mark.network
def test_a_replica_that_does_not_come_up_names_its_command_and_log(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    _stub(monkeypatch, "--hang")
    fleet = _fleet(tmp_path, startup_timeout_s=1.0)
    with pytest.raises(TrainingError, match="not up within") as e:
        fleet.start()
    assert str(STUB) in str(e.value) and str(tmp_path / "logs" / "replica0.log") in str(e.value)
    assert not fleet.replicas[0].alive  # stopped after the failed start
    _stub(monkeypatch, "--exit-code", "3")
    with pytest.raises(TrainingError, match="exited with code 3") as e:
        _fleet(tmp_path).start()
    assert "cannot load the model (simulated)" in str(e.value)  # the log's last lines


@pytest.mark.network
def test_a_replica_that_dies_mid_step_is_restarted_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _stub(monkeypatch)
    blocker = socket.socket()  # the first port in use: the fleet takes the next free one
    base = free_port(23000)
    blocker.bind(("127.0.0.1", base))
    blocker.listen(1)
    settings = ServerSettings(kind="dppo", gpus_per_replica=0, replicas=2, port_base=base, startup_timeout_s=20)
    fleet = ServerFleet(settings, "ckpt", tmp_path / "logs", dtype="float32", max_pixels=None, max_tokens=8,
                        timeout_s=30)
    try:
        fleet.start()
        fleet.watch(every_s=0.2)
        assert base not in [r.port for r in fleet.replicas]
        engine = _engine(tmp_path, ReplicaBackend(fleet, "policy", api_key=fleet.api_key, max_retries=0))
        assert engine.generate(_requests(["a", "b"])) == ["echo: a", "echo: b"]
        victim = fleet.replicas[0]
        os.killpg(victim.proc.pid, signal.SIGKILL)
        victim.proc.wait(5)
        assert engine.generate(_requests(["c", "d", "e", "f"])) == ["echo: c", "echo: d", "echo: e", "echo: f"]
        assert victim.restarts == 1 and victim.alive
        assert victim.log.read_text().count("=== ") == 2  # both launches logged
        os.killpg(victim.proc.pid, signal.SIGKILL)  # dies again in the same step: no restart left
        victim.proc.wait(5)
        with pytest.raises(TrainingError, match="no restart left") as e:
            engine.generate(_requests(["g", "h"]))
        assert str(victim.log) in str(e.value) and "--resume" in str(e.value)
        fleet.new_step()  # the next step may restart it again
        deadline = time.monotonic() + 20
        while not victim.alive and time.monotonic() < deadline:
            time.sleep(0.1)
        assert engine.generate(_requests(["i", "j"])) == ["echo: i", "echo: j"]
    finally:
        fleet.stop()
        blocker.close()
    assert not any(r.alive for r in fleet.replicas)
