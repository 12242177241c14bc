"""The HTTP e-stop endpoint under hostile requests: stopping is never refused; un-latching needs the operator token,
a JSON body and no foreign Origin/Host (issue 9: a text/plain cross-site POST /reset undid an operator's stop)."""

from __future__ import annotations

import http.client
from collections.abc import Iterator

import httpx
import pytest

from robot_bridge.estop import MAX_BODY, EStopServer
from robot_bridge.safety import EStop

pytestmark = pytest.mark.network

TOKEN = "operator-t0ken"
JSON = {"Content-Type": "application/json"}
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: (name, path, headers ({port} is replaced), body, expected status, latched afterwards) for a latched stop
RESET_PROBES: list[tuple[str, str, dict[str, str], bytes, int, bool]] = [
    ("stranger: no token, text/plain, foreign Origin", "/reset",
     {"Content-Type": "text/plain", "Origin": "http://evil.example"}, b"{}", 403, True),
    ("no token", "/reset", JSON, b"{}", 401, True),
    ("wrong token", "/reset", {**JSON, "Authorization": "Bearer nope"}, b"{}", 401, True),
    ("token in another scheme", "/reset", {**JSON, "Authorization": f"Basic {TOKEN}"}, b"{}", 401, True),
    ("token without a scheme", "/reset", {**JSON, "Authorization": TOKEN}, b"{}", 401, True),
    ("token, text/plain", "/reset", {**AUTH, "Content-Type": "text/plain"}, b"{}", 415, True),
    ("token, form body", "/reset", {**AUTH, "Content-Type": "application/x-www-form-urlencoded"}, b"a=1", 415,
     True),
    ("token, no Content-Type", "/reset", AUTH, b"{}", 415, True),
    ("token, JSON, foreign Origin", "/reset", {**AUTH, **JSON, "Origin": "http://evil.example"}, b"{}", 403, True),
    ("token, JSON, Origin null", "/reset", {**AUTH, **JSON, "Origin": "null"}, b"{}", 403, True),
    ("token, JSON, Origin of another local port", "/reset",
     {**AUTH, **JSON, "Origin": "http://127.0.0.1:1"}, b"{}", 403, True),
    ("token, JSON, https Origin", "/reset", {**AUTH, **JSON, "Origin": "https://127.0.0.1:{port}"}, b"{}", 403,
     True),
    ("DNS rebinding: foreign Host", "/reset", {**AUTH, **JSON, "Host": "evil.example:{port}"}, b"{}", 403, True),
    ("token, JSON array body", "/reset", {**AUTH, **JSON}, b"[1]", 400, True),
    ("token, not JSON", "/reset", {**AUTH, **JSON}, b"reset please", 400, True),
    ("token, 2,000-deep JSON", "/reset", {**AUTH, **JSON}, b"[" * 2000 + b"]" * 2000, 400, True),
    ("token, body too large", "/reset", {**AUTH, **JSON}, b" " * (MAX_BODY + 1), 413, True),
    ("unknown route", "/unlatch", {**AUTH, **JSON}, b"{}", 404, True),
]
#: requests that must un-latch (the operator)
OPERATOR_PROBES: list[tuple[str, dict[str, str], bytes]] = [
    ("token, JSON, empty body", {**AUTH, **JSON}, b""),
    ("token, JSON; charset, lower-case scheme", {"Authorization": f"bearer {TOKEN}",
                                                 "Content-Type": "application/json; charset=utf-8"}, b"{}"),
    ("token, JSON, own Origin", {**AUTH, **JSON, "Origin": "http://127.0.0.1:{port}"}, b"{}"),
    ("token, JSON, localhost Host", {**AUTH, **JSON, "Host": "localhost:{port}"}, b'{"note": "clear"}'),
]
#: stop requests: all must latch
STOP_PROBES: list[tuple[str, dict[str, str], bytes]] = [
    ("bare POST", {}, b""),
    ("text/plain from a foreign Origin", {"Content-Type": "text/plain", "Origin": "http://evil.example"}, b"x"),
    ("form body", {"Content-Type": "application/x-www-form-urlencoded"}, b"a=1"),
    ("huge declared body", {"Content-Length": "999999999"}, b""),
    ("bad Content-Length", {"Content-Length": "abc"}, b""),
]


@pytest.fixture
def server() -> Iterator[EStopServer]:
    with EStopServer(EStop(), token=TOKEN) as srv:
        yield srv


def raw_post(srv: EStopServer, path: str, headers: dict[str, str], body: bytes) -> int:
    """POST with exactly these headers (http.client: a wrong Content-Length or a foreign Host is sent as is)."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    try:
        conn.putrequest("POST", path, skip_host="Host" in headers, skip_accept_encoding=True)
        hdrs = {k: v.replace("{port}", str(srv.port)) for k, v in headers.items()}
        hdrs.setdefault("Content-Length", str(len(body)))
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders(body if hdrs["Content-Length"] == str(len(body)) else None)
        return conn.getresponse().status
    finally:
        conn.close()


@pytest.mark.parametrize(("name", "path", "headers", "body", "status", "latched"), RESET_PROBES,
                         ids=[p[0] for p in RESET_PROBES])
def test_reset_refused(server: EStopServer, name: str, path: str, headers: dict[str, str], body: bytes,
                       status: int, latched: bool) -> None:
    server.estop.trigger("operator", source="test")
    assert raw_post(server, path, headers, body) == status
    assert server.estop.latched is latched and server.estop.reason == "operator"


@pytest.mark.parametrize(("name", "headers", "body"), OPERATOR_PROBES, ids=[p[0] for p in OPERATOR_PROBES])
def test_operator_resets(server: EStopServer, name: str, headers: dict[str, str], body: bytes) -> None:
    server.estop.trigger("operator", source="test")
    assert raw_post(server, "/reset", headers, body) == 200
    assert not server.estop.latched


@pytest.mark.parametrize(("name", "headers", "body"), STOP_PROBES, ids=[p[0] for p in STOP_PROBES])
def test_stop_is_never_refused(server: EStopServer, name: str, headers: dict[str, str], body: bytes) -> None:
    assert raw_post(server, "/estop", headers, body) == 200
    assert server.estop.latched and server.estop.source == "http"


def test_real_client_and_generated_token() -> None:
    e = EStop()
    with EStopServer(e) as srv:
        assert srv.token_generated and len(srv.token) >= 20
        with EStopServer(EStop()) as other:
            assert other.token != srv.token
        assert httpx.post(f"{srv.url}/estop").status_code == 200 and e.latched
        # what a web page can send without a preflight: text/plain, its own Origin
        page = httpx.post(f"{srv.url}/reset", content=b"{}",
                          headers={"Content-Type": "text/plain", "Origin": "https://attacker.example"})
        assert page.status_code == 403 and e.latched
        assert httpx.post(f"{srv.url}/reset", json={}).status_code == 401 and e.latched
        ok = httpx.post(f"{srv.url}/reset", json={}, headers={"Authorization": f"Bearer {srv.token}"})
        assert ok.status_code == 200 and ok.json() == {"latched": False, "was_latched": True} and not e.latched
        assert httpx.get(f"{srv.url}/status").json()["latched"] is False
        assert srv.refused == 2
