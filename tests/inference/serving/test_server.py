"""The transformers-backend server over real loopback HTTP: routes, batching, stop/length, streaming, the tiny VLM."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pytest

from dppo_embodied.client import ChatClient, ClientConfig, build_messages
from dppo_embodied.errors import ServerError
from inference.serving.server import ServeConfig, ServerThread, build_batcher, create_app
from tests.inference.serving.conftest import last_text

pytestmark = pytest.mark.network
IMG = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)


def client(url: str, model: str = "echo", **kw: object) -> ChatClient:
    return ChatClient(ClientConfig(base_url=url, model=model, max_retries=0, timeout_s=30.0, **kw))  # type: ignore


def test_routes_and_echo(echo_server) -> None:  # type: ignore[no-untyped-def]
    srv, _, _ = echo_server()
    with client(srv.url) as c:
        assert c.health() and c.list_models() == ["echo"]
        r = c.chat(build_messages("where is the cube", images=[IMG, IMG], system="be brief"), max_tokens=50)
        assert r.text == "echo: where is the cube [2]" and r.finish_reason == "stop"
        assert r.usage["prompt_tokens"] == 4 + 2 + 2  # words of both messages + one token per image (the fake)
        assert r.usage["total_tokens"] == 8 + r.usage["completion_tokens"]
        r = c.chat(build_messages("a b c d e f"), max_tokens=3)
        assert r.text == "echo: a b" and r.finish_reason == "length"
        r = c.chat(build_messages("cut here please"), stop=["here"])
        assert r.text == "echo: cut" and r.finish_reason == "stop"
        with pytest.raises(ServerError, match="404"):
            c.chat(build_messages("x"), model="other-model")
    root = srv.url[:-3]
    assert httpx.get(f"{root}/health").json() == {"status": "ok", "queue_depth": 0, "oldest_wait_s": 0.0,
                                                  "running": 0, "running_for_s": 0.0, "max_queue": 256}
    for path in ("/docs", "/openapi.json", "/redoc"):
        assert httpx.get(f"{root}{path}").status_code == 404


def test_n_and_streaming(echo_server) -> None:  # type: ignore[no-untyped-def]
    srv, _, _ = echo_server()
    body = {"model": "echo", "messages": [{"role": "user", "content": "hello"}], "n": 2}
    out = httpx.post(f"{srv.url}/chat/completions", json=body).json()
    assert [ch["message"]["content"] for ch in out["choices"]] == ["echo: hello [0]"] * 2
    with httpx.stream("POST", f"{srv.url}/chat/completions", json={**body, "n": 1, "stream": True}) as r:
        events = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    text = "".join(json.loads(e)["choices"][0]["delta"].get("content", "") for e in events[:-1])
    assert text == "echo: hello [0]"


def test_bad_requests_are_400_json(echo_server) -> None:  # type: ignore[no-untyped-def]
    srv, _, _ = echo_server()
    r = httpx.post(f"{srv.url}/chat/completions", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "valid JSON" in r.json()["error"]["message"]
    r = httpx.post(f"{srv.url}/chat/completions", json={"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]})
    assert r.status_code == 400 and "data URL" in r.json()["error"]["message"]
    r = httpx.post(f"{srv.url}/chat/completions", content=b"x" * (3 * 1024 * 1024),
                   headers={"Content-Type": "application/json"})
    assert r.status_code == 413


def test_concurrent_requests_are_batched(echo_server) -> None:  # type: ignore[no-untyped-def]
    srv, backend, batcher = echo_server(delay_s=0.05, window_s=0.02)
    with client(srv.url, concurrency=8) as c:
        results = c.chat_many([build_messages(f"q{i}") for i in range(16)], max_tokens=20)
    assert [r.text for r in results] == [f"echo: q{i} [0]" for i in range(16)]  # type: ignore[union-attr]
    assert max(backend.batches) > 1 and sum(backend.batches) == 16
    assert batcher.stats.requests == 16 and batcher.stats.mean_batch > 1


def test_different_settings_are_generated_separately(echo_server) -> None:  # type: ignore[no-untyped-def]
    srv, backend, _ = echo_server(delay_s=0.05, window_s=0.05)
    assert backend.batches == []
    with client(srv.url, concurrency=4) as c:
        msgs = [build_messages("a b c")] * 4
        import concurrent.futures as cf

        with cf.ThreadPoolExecutor(4) as pool:
            futs = [pool.submit(c.chat, m, max_tokens=2 if i % 2 else 10) for i, m in enumerate(msgs)]
            texts = sorted(f.result().text for f in futs)
    assert texts == ["echo: a", "echo: a", "echo: a b c [0]", "echo: a b c [0]"]


def test_backend_failure_isolated_per_request() -> None:
    from inference.serving.batching import MicroBatcher
    from inference.serving.protocol import Completion

    class Picky:
        max_model_len, keep_pixels = None, None

        def generate(self, requests, params, deadlines):  # type: ignore[no-untyped-def]
            if any(last_text(r) == "boom" for r in requests):
                raise ValueError("cannot handle boom")
            return [[Completion("ok", "stop", 1)] for _ in requests]

        def prompt_tokens(self, request):  # type: ignore[no-untyped-def]
            return 1

    batcher = MicroBatcher(Picky(), window_s=0.05)
    with ServerThread(create_app(batcher, "m")) as srv, client(srv.url, model="m", concurrency=3) as c:
        res = c.chat_many([build_messages("fine"), build_messages("boom"), build_messages("fine")])
    batcher.close()
    assert res[0].text == "ok" and res[2].text == "ok"  # type: ignore[union-attr]
    assert isinstance(res[1], ServerError) and "boom" in str(res[1])


def test_tiny_vlm_served(tiny_vlm_path: Path) -> None:
    cfg = ServeConfig(model=str(tiny_vlm_path), port=0, served_model_name="tiny", default_max_tokens=16,
                      max_batch_size=4)
    batcher = build_batcher(cfg)
    try:
        with ServerThread(create_app(batcher, cfg.model_name, limits=cfg.limits())) as srv, \
                client(srv.url, model="tiny", concurrency=4) as c:
            r = c.chat(build_messages("Point to the red block.", images=[IMG], system="You are a robot."),
                       max_tokens=8, temperature=0.0)
            assert isinstance(r.text, str) and r.finish_reason in ("stop", "length")
            assert r.usage["completion_tokens"] <= 8 and r.usage["prompt_tokens"] > 5
            again = c.chat(build_messages("Point to the red block.", images=[IMG], system="You are a robot."),
                           max_tokens=8, temperature=0.0)
            assert again.text == r.text  # greedy decoding is deterministic
            many = c.chat_many([build_messages(f"Where is object {i}?", images=[IMG]) for i in range(4)],
                               max_tokens=4)
            assert all(not isinstance(m, Exception) for m in many)
            sampled = c.chat(build_messages("Say something."), max_tokens=6, temperature=1.0)
            assert isinstance(sampled.text, str)
        assert batcher.stats.requests == 7
    finally:
        batcher.close()
