"""Security of ``dppo serve``: loopback by default, no non-loopback host without a key, the key on every request."""

from __future__ import annotations

import httpx
import pytest

from dppo_embodied.errors import ConfigError
from inference.serving.cli import config_from_args, main
from inference.serving.server import ServeConfig, is_loopback

KEY = "s3cret-key"


@pytest.mark.parametrize(("host", "loop"), [("127.0.0.1", True), ("localhost", True), ("::1", True),
                                             ("127.0.0.2", True), ("0.0.0.0", False), ("::", False),
                                             ("192.168.1.5", False), ("example.com", False)])
def test_is_loopback(host: str, loop: bool) -> None:
    assert is_loopback(host) is loop


def test_default_binds_loopback() -> None:
    assert ServeConfig(model="m").host == "127.0.0.1"


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3"])
def test_non_loopback_without_key_is_refused(host: str) -> None:
    with pytest.raises(ConfigError, match="API key"):
        ServeConfig(model="m", host=host)
    assert ServeConfig(model="m", host=host, api_key=KEY).api_key == KEY
    with pytest.raises(ConfigError, match="empty"):
        ServeConfig(model="m", host=host, api_key="  ")


def test_cli_refuses_non_loopback_without_key(capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DPPO_API_KEY", raising=False)
    assert main(["--model", "org/ckpt", "--host", "0.0.0.0"]) == 2
    assert "refusing" in capsys.readouterr().err
    monkeypatch.setenv("DPPO_API_KEY", KEY)
    cfg, _ = config_from_args(["--model", "org/ckpt", "--host", "0.0.0.0"])
    assert cfg.api_key == KEY and repr(cfg).count(KEY) == 0  # never shown in repr/logs


@pytest.mark.network
def test_key_checked_on_every_request(echo_server) -> None:  # type: ignore[no-untyped-def]
    srv, backend, _ = echo_server(api_key=KEY)
    body = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}
    good = {"Authorization": f"Bearer {KEY}"}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}, {"Authorization": f"Basic {KEY}"},
                    {"Authorization": f"Bearer{KEY}"}, {"X-Api-Key": KEY}):
        r = httpx.post(f"{srv.url}/chat/completions", json=body, headers=headers)
        assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
        assert httpx.get(f"{srv.url}/models", headers=headers).status_code == 401
        assert httpx.get(f"{srv.url[:-3]}/anything", headers=headers).status_code == 401
    assert backend.batches == []  # nothing reached the model
    with httpx.Client(headers=good) as c:
        for _ in range(3):  # the same keep-alive connection: checked each time
            assert c.post(f"{srv.url}/chat/completions", json=body).status_code == 200
            assert c.get(f"{srv.url}/models").status_code == 200
        assert c.post(f"{srv.url}/chat/completions", json=body, headers={"Authorization": "Bearer x"}).status_code \
            == 401
    assert httpx.get(f"{srv.url[:-3]}/health").status_code == 200  # probe stays open and says nothing else


@pytest.mark.network
def test_no_pickle_on_the_wire(echo_server) -> None:  # type: ignore[no-untyped-def]
    import pickle

    srv, backend, _ = echo_server()
    payload = pickle.dumps({"model": "echo", "messages": [{"role": "user", "content": "hi"}]})
    r = httpx.post(f"{srv.url}/chat/completions", content=payload,
                   headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 415 and backend.batches == []
    r = httpx.post(f"{srv.url}/chat/completions", content=payload, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and backend.batches == []
    r = httpx.post(f"{srv.url}/chat/completions", json={"messages": [{"role": "user", "content": "__import__('os')"}]})
    assert r.json()["choices"][0]["message"]["content"] == "echo: __import__('os') [0]"  # returned, never run
