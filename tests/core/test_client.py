"""ChatClient (on the official openai SDK) against the loopback FakeOpenAIServer (127.0.0.1 only); image encoding
and message building: test_client_messages.py."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from dppo_embodied.client import ChatClient, ChatResponse, ClientConfig, build_messages
from dppo_embodied.errors import ClientError, ConfigError, ServerError
from tests.helpers.fake_openai_server import FakeOpenAIServer, image_urls, last_user_text

pytestmark = [pytest.mark.network, pytest.mark.timeout(30)]


@pytest.fixture(autouse=True)
def _no_env_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("DPPO_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(lifetime_s=60) as srv:
        yield srv


def make_client(url: str, **kw) -> ChatClient:
    opts = {"model": "fake-model", "timeout_s": 5.0, "max_retries": 2, **kw}
    return ChatClient(ClientConfig(base_url=url, **opts))


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ------------------------------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"base_url": "127.0.0.1:8000"}, "http"),
        ({"base_url": "http://127.0.0.1:8000/v1/chat/completions"}, "API root 'http://127.0.0.1:8000/v1'"),
        ({"model": ""}, "served model name"),
        ({"concurrency": 0}, "concurrency"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"max_retries": -1}, "max_retries"),
        ({"temperature": 5.0}, "temperature"),
        ({"extra_body": {"messages": []}}, "extra_body"),
    ],
)
def test_config_validation(kw: dict, match: str) -> None:
    base = {"base_url": "http://127.0.0.1:8000/v1", "model": "m"}
    with pytest.raises(ConfigError, match=match):
        ClientConfig(**{**base, **kw})


def test_config_from_dict_and_key_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = ClientConfig.from_dict({"base_url": "http://127.0.0.1:8000/v1/", "model": "m"})
    assert cfg.base_url == "http://127.0.0.1:8000/v1" and cfg.api_root == "http://127.0.0.1:8000"
    with pytest.raises(ConfigError, match="unknown client key"):
        ClientConfig.from_dict({"base_url": "http://x/v1", "model": "m", "timeout": 3}, source="eval.yaml")
    assert cfg.resolved_api_key() is None
    monkeypatch.setenv("OPENAI_API_KEY", "openai")
    assert cfg.resolved_api_key() == "openai"
    monkeypatch.setenv("DPPO_API_KEY", "dppo")
    assert cfg.resolved_api_key() == "dppo"
    assert "sk-secret" not in repr(ClientConfig(base_url="http://x/v1", model="m", api_key="sk-secret"))


# ----------------------------------------------------------------------------------------------- requests


def test_round_trip(server: FakeOpenAIServer) -> None:
    seen = {}

    def responder(req: dict) -> str:
        seen["req"] = req
        return f"ok: {last_user_text(req)} ({len(image_urls(req))} image)"

    server.responder = responder
    cfg_kw = {"extra_body": {"structured_outputs": {"choice": ["a", "b"]}}, "max_tokens": 64}
    with make_client(server.url, **cfg_kw) as client:
        msgs = build_messages("hello", images=[np.zeros((16, 16, 3), np.uint8)], system="sys")
        r = client.chat(msgs, temperature=0.2, stop="\n", seed=7, extra_body={"top_k": 5})
        assert isinstance(r, ChatResponse)
        assert (r.text, r.finish_reason, r.attempts) == ("ok: hello (1 image)", "stop", 1)
        assert r.usage["total_tokens"] > 0 and r.raw["choices"][0]["message"]["role"] == "assistant"
        assert 0 < r.latency_s < 5
        req = seen["req"]
        assert req["model"] == "fake-model" and req["messages"] == msgs
        assert (req["max_tokens"], req["temperature"], req["stop"], req["seed"]) == (64, 0.2, ["\n"], 7)
        assert req["structured_outputs"] == {"choice": ["a", "b"]} and req["top_k"] == 5
        for _ in range(2):
            client.chat(msgs)
    ports = {r["client_port"] for r in server.chat_requests}
    assert len(ports) == 1  # one keep-alive connection served all sequential requests


def test_api_key_from_env(server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    server.api_key = "sekrit"
    monkeypatch.setenv("DPPO_API_KEY", "sekrit")
    with make_client(server.url) as client:
        assert client.chat(build_messages("hi")).text == "hi"
        assert client.list_models() == ["fake-model"]
    assert server.chat_requests[-1]["headers"]["authorization"] == "Bearer sekrit"


def test_unauthorized_is_not_retried(server: FakeOpenAIServer) -> None:
    server.api_key = "right"
    with make_client(server.url, api_key="wrong", max_retries=3) as client, pytest.raises(ServerError) as ei:
        client.chat(build_messages("hi"))
    assert "401" in str(ei.value) and "DPPO_API_KEY" in str(ei.value) and ei.value.status == 401
    assert len(server.chat_requests) == 1


def test_bad_request_is_not_retried(server: FakeOpenAIServer) -> None:
    with make_client(server.url + "/nope") as client, pytest.raises(ServerError, match="404") as ei:
        client.chat(build_messages("x"))
    assert "/v1 root" in str(ei.value) or "base_url" in str(ei.value)
    assert ei.value.status == 404 and len(server.requests) == 1


def test_retry_then_success(server: FakeOpenAIServer) -> None:
    server.fail_first = 2
    with make_client(server.url, max_retries=3) as client:
        r = client.chat(build_messages("again"))
    assert (r.text, r.attempts) == ("again", 3)
    assert len(server.chat_requests) == 3


def test_gives_up_after_max_retries(server: FakeOpenAIServer) -> None:
    server.mode = "error500"
    with make_client(server.url, max_retries=2) as client, pytest.raises(ClientError) as ei:
        client.chat(build_messages("x"))
    msg = str(ei.value)
    assert f"{server.url}/chat/completions" in msg and "3 attempt" in msg and "HTTP 500" in msg
    assert isinstance(ei.value, ServerError)
    assert len(server.chat_requests) == 3
    server.mode = "ok"  # the server recovers; the same client works again
    with make_client(server.url) as client:
        assert client.chat(build_messages("back")).text == "back"


def test_server_down_names_url_and_fix() -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    with make_client(url, max_retries=1) as client:
        t0 = time.monotonic()
        with pytest.raises(ClientError) as ei:
            client.chat(build_messages("x"))
        assert time.monotonic() - t0 < 5
        assert not client.health()
    msg = str(ei.value)
    assert url in msg and "dppo serve" in msg and "vllm serve" in msg and "2 attempt" in msg
    assert not isinstance(ei.value, ServerError)


def test_closed_server_refuses_even_kept_alive_connections() -> None:
    srv = FakeOpenAIServer()
    with make_client(srv.url, max_retries=0) as client:
        assert client.chat(build_messages("a")).text == "a"
        srv.close()
        srv.close()  # idempotent
        with pytest.raises(ClientError):
            client.chat(build_messages("b"))


@pytest.mark.parametrize(("mode", "requests"), [("garbage", 1), ("truncated", 1), ("drop", 3)])
def test_bad_responses_fail_and_dropped_connections_are_retried(server: FakeOpenAIServer, mode: str,
                                                                requests: int) -> None:
    """A dropped connection is retried (the SDK); a 200 whose body is not a chat completion fails at once: asking
    the same server again would get the same body."""
    server.mode = mode
    with make_client(server.url, max_retries=2) as client, pytest.raises(ClientError) as ei:
        client.chat(build_messages("x"))
    assert server.url in str(ei.value) and f"{requests} attempt" in str(ei.value)
    assert len(server.chat_requests) == requests


def test_empty_content_is_empty_text(server: FakeOpenAIServer) -> None:
    server.mode = "empty_content"
    with make_client(server.url) as client:
        r = client.chat(build_messages("x"))
    assert (r.text, r.finish_reason) == ("", "length")


def test_timeout_gives_up_quickly(server: FakeOpenAIServer) -> None:
    server.latency_s = 1.0
    with make_client(server.url, timeout_s=0.2, max_retries=1) as client:
        t0 = time.monotonic()
        with pytest.raises(ClientError, match="timed out") as ei:
            client.chat(build_messages("x"))
        assert time.monotonic() - t0 < 2.0
    assert server.url in str(ei.value)


def test_deadline_bounds_the_whole_call(server: FakeOpenAIServer) -> None:
    server.mode = "slow"
    server.latency_s = 1.0
    with make_client(server.url, timeout_s=10, max_retries=5) as client:
        t0 = time.monotonic()
        with pytest.raises(ClientError, match="timed out"):
            client.chat(build_messages("x"), deadline_s=0.3)
        assert time.monotonic() - t0 < 1.0


def test_deadline_call_makes_one_attempt(server: FakeOpenAIServer) -> None:
    server.mode = "error500"
    with make_client(server.url, max_retries=5) as client, pytest.raises(ServerError, match="1 attempt"):
        client.chat(build_messages("x"), deadline_s=5.0)
    assert len(server.chat_requests) == 1


def test_retry_after_is_honoured(server: FakeOpenAIServer) -> None:
    server.fail_first, server.fail_status, server.retry_after = 1, 429, "0.5"
    with make_client(server.url) as client:
        assert client.chat(build_messages("x")).attempts == 2
    t = [r["time"] for r in server.chat_requests]
    assert t[1] - t[0] >= 0.45  # waited as asked although the jittered backoff would be 0
    server.clear()
    server.fail_first, server.fail_status, server.retry_after = 1, 503, "0"
    with make_client(server.url) as client:
        t0 = time.monotonic()
        assert client.chat(build_messages("x")).attempts == 2
        assert time.monotonic() - t0 < 2.0  # the SDK's first backoff is at most 0.5 s


def test_chat_many_preserves_order_and_returns_errors(server: FakeOpenAIServer) -> None:
    def responder(req: dict) -> str | dict:
        text = last_user_text(req)
        time.sleep(0.01 * (hash(text) % 5))
        if text == "bad":
            return {"not": "a completion"}
        return text.upper()

    server.responder = responder
    prompts = [f"p{i}" for i in range(10)]
    prompts[3] = "bad"
    seen: list[int] = []
    with make_client(server.url, max_retries=1, concurrency=4) as client:
        out = client.chat_many([build_messages(p) for p in prompts], on_result=lambda i, r: seen.append(i))
        assert client.chat_many([]) == []
    assert sorted(seen) == list(range(10))
    assert isinstance(out[3], ClientError) and "no choices" in str(out[3])
    assert [r.text for i, r in enumerate(out) if i != 3] == [p.upper() for i, p in enumerate(prompts) if i != 3]


def test_chat_many_sends_per_request_fields(server: FakeOpenAIServer) -> None:
    server.responder = lambda req: last_user_text(req)
    with make_client(server.url) as client:
        out = client.chat_many([build_messages(p) for p in ("a", "b")], temperature=1.0,
                               per_request=[{"seed": 1}, {"seed": 2}])
        assert [r.text for r in out] == ["a", "b"]
        with pytest.raises(ValueError, match="one per request"):
            client.chat_many([build_messages("a")], per_request=[])
    sent = {last_user_text(r["json"]): (r["json"]["seed"], r["json"]["temperature"]) for r in server.chat_requests}
    assert sent == {"a": (1, 1.0), "b": (2, 1.0)}


def test_chat_many_overlaps_requests(server: FakeOpenAIServer) -> None:
    server.latency_s = 0.2
    batch = [build_messages(f"q{i}") for i in range(8)]

    def elapsed(concurrency: int) -> float:
        with make_client(server.url, concurrency=concurrency) as client:
            t0 = time.monotonic()
            out = client.chat_many(batch)
            dt = time.monotonic() - t0
        assert [r.text for r in out] == [f"q{i}" for i in range(8)]
        return dt

    sequential, concurrent = elapsed(1), elapsed(8)
    assert concurrent < sequential / 2.5, (sequential, concurrent)


def test_list_models_and_health(server: FakeOpenAIServer) -> None:
    with make_client(server.url) as client:
        assert client.list_models() == ["fake-model"]
        assert client.health()
        server.mode = "error500"
        assert not client.health()
    assert not client.health()  # closed client
    with pytest.raises(ClientError, match="closed"):
        client.chat(build_messages("x"))


def test_loopback_ignores_proxy_env(server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    dead_proxy = f"http://127.0.0.1:{closed_port()}"
    for var in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(var, dead_proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with make_client(server.url, max_retries=0) as client:
        assert client.chat(build_messages("direct")).text == "direct"


def test_fake_server_stops_itself() -> None:
    srv = FakeOpenAIServer(lifetime_s=0.2)
    deadline = time.monotonic() + 5
    while not srv.closed and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.closed
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", srv.port), timeout=1).close()


def test_fake_server_handles_concurrent_requests(server: FakeOpenAIServer) -> None:
    peak, live, lock = [0], [0], threading.Lock()

    def responder(req: dict) -> str:
        with lock:
            live[0] += 1
            peak[0] = max(peak[0], live[0])
        time.sleep(0.1)
        with lock:
            live[0] -= 1
        return "ok"

    server.responder = responder
    with make_client(server.url, concurrency=4) as client:
        assert all(r.text == "ok" for r in client.chat_many([build_messages("x")] * 4))
    assert peak[0] >= 2


DEEP = 100_000
UNDECODABLE = {
    "nested_array": b"[" * DEEP + b"]" * DEEP,
    "nested_object": b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    "nested_choices": b'{"choices": ' + b"[" * DEEP + b"]" * DEEP + b"}",
    "not_utf8": b'{"choices": "\xff\xfe"}',
}


@pytest.mark.parametrize("name", sorted(UNDECODABLE))
def test_undecodable_reply_is_a_failed_request(name: str) -> None:
    from tests.helpers.raw_reply_server import RawReplyServer

    with RawReplyServer(UNDECODABLE[name]) as srv, make_client(srv.url, max_retries=1) as client:
        with pytest.raises(ClientError, match=r"nested too deeply|malformed") as err:
            client.chat(build_messages("hi"))
        assert type(err.value) is ClientError and srv.hits == 1  # a bad body is a failed request, not retried
        with pytest.raises(ClientError):
            client.list_models()


def test_deep_but_decodable_reply_fields_are_ignored() -> None:
    from tests.helpers.raw_reply_server import RawReplyServer

    deep = b"[" * 500 + b"]" * 500
    body = (b'{"choices": [{"message": {"content": "ok"}, "finish_reason": ' + deep + b'}], "error": ' + deep + b"}")
    with RawReplyServer(body) as srv, make_client(srv.url) as client:
        r = client.chat(build_messages("hi"))
    assert (r.text, r.finish_reason) == ("ok", None)
    models = b'{"data": [{"id": ' + deep + b'}, {"id": "m1"}]}'
    with RawReplyServer(models) as srv, make_client(srv.url) as client:
        assert client.list_models() == ["m1"]
