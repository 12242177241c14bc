"""Abuse cases of ``dppo serve`` over real loopback HTTP (httpx and the official ``openai`` client) with a fake
backend: deep JSON, content types, foreign origins, the ``Bearer`` scheme, prompts over the context, deadlines,
fair scheduling, honest ``/health`` and the queue's image budget."""

from __future__ import annotations

import concurrent.futures as cf
import threading
import time
from collections.abc import Callable, Sequence

import httpx
import pytest

from dppo_embodied.conversation import Conversation
from dppo_embodied.generation import ChatRequest, GenerationSettings
from inference.serving.batching import MicroBatcher
from inference.serving.protocol import Completion, RequestError
from inference.serving.server import ServerThread, create_app
from tests.inference.serving.conftest import EchoBackend

openai = pytest.importorskip("openai")
pytestmark = pytest.mark.network
KEY = "s3cret-key"


def chat(text: str = "hi", **kw: object) -> dict[str, object]:
    return {"model": "echo", "messages": [{"role": "user", "content": text}], **kw}


def wait_until(cond: Callable[[], bool], what: str, limit_s: float = 20.0) -> None:
    t_end = time.monotonic() + limit_s
    while not cond():
        if time.monotonic() > t_end:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.005)


class GatedEcho(EchoBackend):
    """An echo backend whose first batch waits for ``gate`` (so requests can be queued behind it)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def generate(self, requests: Sequence[ChatRequest], params: GenerationSettings,
                 deadlines: Sequence[float]) -> list[list[Completion]]:
        if not self.texts:
            self.texts.append([])  # marks the first batch as started
            self.gate.wait(20)
            self.texts.pop()
        return super().generate(requests, params, deadlines)


@pytest.fixture
def gated() -> tuple[ServerThread, GatedEcho, MicroBatcher]:
    backend = GatedEcho()
    batcher = MicroBatcher(backend, window_s=0.0, saturation_wait_s=0.05)
    srv = ServerThread(create_app(batcher, "echo", api_key=None)).start()
    yield srv, backend, batcher
    backend.gate.set()
    srv.stop()
    batcher.close()


def oai(url: str, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key=key, max_retries=0, timeout=30)


@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000])
def test_deeply_nested_json_is_400(echo_server, body: bytes) -> None:  # type: ignore[no-untyped-def]
    srv, backend, _ = echo_server(max_model_len=None)
    r = httpx.post(f"{srv.url}/chat/completions", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "nested too deeply" in r.json()["error"]["message"] and backend.batches == []
    assert httpx.post(f"{srv.url}/chat/completions", json=chat()).status_code == 200  # the server is fine


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; b=x",
                                   "application/jsonx", None])
def test_post_needs_json_content_type(echo_server, ctype: str | None) -> None:  # type: ignore[no-untyped-def]
    import json

    srv, backend, _ = echo_server()
    headers = {"Content-Type": ctype} if ctype else {}
    r = httpx.post(f"{srv.url}/chat/completions", content=json.dumps(chat()).encode(), headers=headers)
    assert r.status_code == 415 and "application/json" in r.json()["error"]["message"]
    assert backend.batches == []
    for ok in ("application/json; charset=utf-8", "Application/JSON"):
        r = httpx.post(f"{srv.url}/chat/completions", content=json.dumps(chat()).encode(),
                       headers={"Content-Type": ok})
        assert r.status_code == 200


def test_foreign_origin_refused_without_key(echo_server) -> None:  # type: ignore[no-untyped-def]
    srv, backend, _ = echo_server(allowed_origins=["https://lab.example:8443"])
    for origin in ("https://evil.example", "null", "http://127.0.0.1.evil.example", "http://[::1"):
        r = httpx.post(f"{srv.url}/chat/completions", json=chat(), headers={"Origin": origin})
        assert r.status_code == 403 and r.json()["error"]["type"] == "permission_error", origin
        assert httpx.get(f"{srv.url}/models", headers={"Origin": origin}).status_code == 403
    assert backend.batches == []
    for origin in ("http://localhost:5173", "http://127.0.0.1:8000", "http://[::1]:3000", "https://lab.example:8443"):
        assert httpx.post(f"{srv.url}/chat/completions", json=chat(), headers={"Origin": origin}).status_code == 200
    keyed, _, _ = echo_server(api_key=KEY)  # with a key, the key decides (a page cannot send it cross-site)
    r = httpx.post(f"{keyed.url}/chat/completions", json=chat(),
                   headers={"Origin": "https://evil.example", "Authorization": f"Bearer {KEY}"})
    assert r.status_code == 200


def test_bearer_scheme_is_case_insensitive(echo_server) -> None:  # type: ignore[no-untyped-def]
    srv, _, _ = echo_server(api_key=KEY)
    for header in (f"Bearer {KEY}", f"bearer {KEY}", f"BEARER {KEY}", f"bEaReR   {KEY}"):
        r = httpx.post(f"{srv.url}/chat/completions", json=chat(), headers={"Authorization": header})
        assert r.status_code == 200, header
    with oai(srv.url, KEY) as c:
        assert c.chat.completions.create(model="echo", messages=[{"role": "user", "content": "x"}]).choices
    with oai(srv.url, "wrong") as c, pytest.raises(openai.AuthenticationError):
        c.chat.completions.create(model="echo", messages=[{"role": "user", "content": "x"}])


def test_prompt_over_the_context_is_400(echo_server) -> None:  # type: ignore[no-untyped-def]
    srv, backend, _ = echo_server(max_model_len=64)
    with oai(srv.url) as c:
        with pytest.raises(openai.BadRequestError, match="context of 64 tokens: the prompt may use at most 56"):
            c.chat.completions.create(model="echo", messages=[{"role": "user", "content": "w " * 100}],
                                      max_tokens=8)
        with pytest.raises(openai.BadRequestError, match="characters, far beyond"):  # not even tokenized
            c.chat.completions.create(model="echo", messages=[{"role": "user", "content": "w" * 100_000}],
                                      max_tokens=8)
        with pytest.raises(openai.BadRequestError, match=r"n \* max_tokens"):
            c.chat.completions.create(model="echo", messages=[{"role": "user", "content": "x"}], n=8,
                                      max_tokens=4096)
        ok = c.chat.completions.create(model="echo", messages=[{"role": "user", "content": "w " * 50}], max_tokens=8)
    assert ok.usage.prompt_tokens == 50 and backend.batches == [1]


def test_deadline_during_generation_returns_length(echo_server) -> None:  # type: ignore[no-untyped-def]
    srv, _, batcher = echo_server(delay_s=60.0)
    with oai(srv.url) as c:
        raw = c.chat.completions.with_raw_response.create(
            model="echo", messages=[{"role": "user", "content": "a long story"}], max_tokens=100,
            extra_body={"timeout_s": 0.3})
    out = raw.parse()
    assert raw.headers["x-deadline-exceeded"] == "true"
    assert out.choices[0].finish_reason == "length" and batcher.stats.cut_by_deadline == 1
    with pytest.raises(openai.BadRequestError, match="timeout_s"):
        oai(srv.url).chat.completions.create(model="echo", messages=[{"role": "user", "content": "x"}],
                                             extra_body={"timeout_s": 10**6})


def test_deadline_in_the_queue_is_504_and_leaves_the_queue(gated) -> None:  # type: ignore[no-untyped-def]
    srv, backend, batcher = gated
    with cf.ThreadPoolExecutor(2) as pool:
        first = pool.submit(httpx.post, f"{srv.url}/chat/completions", json=chat("first"), timeout=30)
        wait_until(lambda: batcher.health()["running"] == 1, "the first request runs")
        with oai(srv.url) as c, pytest.raises(openai.APIStatusError) as e:
            c.chat.completions.create(model="echo", messages=[{"role": "user", "content": "late"}],
                                      extra_body={"timeout_s": 0.2})
        assert e.value.status_code == 504 and e.value.body["type"] == "timeout_error"  # type: ignore[index]
        assert batcher.health()["queue_depth"] == 0  # gone while the worker is still busy
        backend.gate.set()
        assert first.result().status_code == 200
    assert [t for t in backend.texts if t] == [["first"]]  # the expired request was never generated


def test_small_request_goes_before_a_queued_big_one(gated) -> None:  # type: ignore[no-untyped-def]
    srv, backend, batcher = gated

    def post(text: str, max_tokens: int) -> httpx.Response:
        return httpx.post(f"{srv.url}/chat/completions", json=chat(text, max_tokens=max_tokens), timeout=30)

    with cf.ThreadPoolExecutor(3) as pool:
        running = pool.submit(post, "running", 16)
        wait_until(lambda: batcher.health()["running"] == 1, "the first request runs")
        big = pool.submit(post, "big", 1000)
        wait_until(lambda: batcher.health()["queue_depth"] == 1, "the big request waits")
        small = pool.submit(post, "small", 4)
        wait_until(lambda: batcher.health()["queue_depth"] == 2, "the small request waits")
        backend.gate.set()
        assert all(f.result().status_code == 200 for f in (running, big, small))
    assert backend.texts == [["running"], ["small"], ["big"]]


def test_a_big_request_is_not_starved_by_later_small_ones() -> None:
    backend = GatedEcho()
    batcher = MicroBatcher(backend, window_s=0.0)
    batcher.s_per_token = 1e-4  # a 1000-token request is estimated to finish 0.1 s after it arrives
    try:
        running = batcher.submit(ChatRequest(Conversation("running"), GenerationSettings(max_tokens=4)))
        wait_until(lambda: batcher.health()["running"] == 1, "the first request runs")
        big = batcher.submit(ChatRequest(Conversation("big"), GenerationSettings(max_tokens=1000)))
        time.sleep(0.2)  # later arrivals are estimated to finish after the big one
        small = batcher.submit(ChatRequest(Conversation("small"), GenerationSettings(max_tokens=4)))
        backend.gate.set()
        for f in (running, big, small):
            f.result(timeout=30)
    finally:
        backend.gate.set()
        batcher.close()
    assert backend.texts == [["running"], ["big"], ["small"]]


def test_health_reports_saturation(gated) -> None:  # type: ignore[no-untyped-def]
    srv, backend, batcher = gated
    root = srv.url[:-3]
    assert httpx.get(f"{root}/health").json()["status"] == "ok"
    with cf.ThreadPoolExecutor(2) as pool:
        futs = [pool.submit(httpx.post, f"{srv.url}/chat/completions", json=chat(t, max_tokens=m), timeout=30)
                for t, m in (("a", 4), ("b", 8))]
        wait_until(lambda: batcher.health()["oldest_wait_s"] >= 0.05, "a request waits")
        h = httpx.get(f"{root}/health")
        backend.gate.set()
        assert all(f.result().status_code == 200 for f in futs)
    body = h.json()
    assert h.status_code == 200 and body["status"] == "saturated"
    assert body["queue_depth"] == 1 and body["running"] == 1 and body["oldest_wait_s"] >= 0.05
    assert httpx.get(f"{root}/health").json()["status"] == "ok"


def test_health_figures_need_the_key(echo_server) -> None:  # type: ignore[no-untyped-def]
    srv, _, _ = echo_server(api_key=KEY)
    root = srv.url[:-3]
    assert httpx.get(f"{root}/health").json() == {"status": "ok"}
    full = httpx.get(f"{root}/health", headers={"Authorization": f"Bearer {KEY}"}).json()
    assert full["status"] == "ok" and full["queue_depth"] == 0


def test_queued_images_are_bounded() -> None:
    backend = GatedEcho()
    batcher = MicroBatcher(backend, window_s=0.0, max_queued_pixels=100)
    try:
        batcher.submit(ChatRequest(Conversation("running"), GenerationSettings(max_tokens=4)))
        wait_until(lambda: batcher.health()["running"] == 1, "the first request runs")
        batcher.submit(ChatRequest(Conversation("a"), GenerationSettings(max_tokens=4)), pixels=60)
        with pytest.raises(RequestError, match="image pixels") as e:
            batcher.submit(ChatRequest(Conversation("b"), GenerationSettings(max_tokens=4)), pixels=60)
        assert e.value.status == 503
        batcher.submit(ChatRequest(Conversation("c"), GenerationSettings(max_tokens=4)), pixels=40)
    finally:
        backend.gate.set()
        batcher.close()
