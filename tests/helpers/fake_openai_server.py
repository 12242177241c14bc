"""A fake OpenAI-compatible chat server on 127.0.0.1 for tests (stdlib only), with fault injection.

Usage::

    with FakeOpenAIServer(responder=lambda req: "MOVE 1 2 3") as srv:
        client = ChatClient(ClientConfig(base_url=srv.url, model="fake"))
        ...
        srv.mode = "error500"      # switch faults at runtime; set back to "ok" to recover
        assert len(srv.chat_requests) == 3

Routes: ``POST /v1/chat/completions``, ``GET /v1/models``, ``GET /health``. Modes (:data:`MODES`):

* ``"ok"``: answer normally;
* ``"error500"``: every route answers HTTP 500 (``/health`` too);
* ``"garbage"``: chat answers 200 with a non-JSON body;
* ``"truncated"``: chat answers 200 with JSON cut in the middle;
* ``"drop"``: every route closes the connection without answering;
* ``"slow"``: like ``"ok"`` (``latency_s`` applies to every mode; ``"slow"`` uses 1 s when ``latency_s`` is 0);
* ``"empty_content"``: chat answers ``content: null`` with ``finish_reason: "length"``.

``fail_first=N`` makes the first N chat requests answer ``fail_status`` (with a ``Retry-After`` header when
``retry_after`` is set), then the mode applies. The server stops itself after ``lifetime_s`` (default 120 s) even
when a test forgets to close it; :meth:`close` is idempotent and also cuts kept-alive connections, so a closed
server really refuses new requests.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODES = ("ok", "error500", "garbage", "truncated", "drop", "slow", "empty_content")
"""Fault-injection modes understood by :class:`FakeOpenAIServer`."""

Responder = Callable[[dict[str, Any]], "str | dict[str, Any]"]
"""``responder(request_json)`` returns the reply text, or a dict used as the whole response body."""


def last_user_text(request: dict[str, Any]) -> str:
    """Text of the last user message of a chat request (text parts joined), ``""`` when there is none.

    Args:
        request: the chat completion request JSON.

    Returns:
        The text.
    """
    for msg in reversed(request.get("messages") or []):
        if isinstance(msg, dict) and msg.get("role") == "user":
            content = msg.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(
                    p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
                ).strip()
    return ""


def image_urls(request: dict[str, Any]) -> list[str]:
    """All ``image_url`` URLs of a chat request, in message order.

    Args:
        request: the chat completion request JSON.

    Returns:
        The URLs (data URLs for requests built by :func:`dppo_embodied.client.build_messages`).
    """
    urls = []
    for msg in request.get("messages") or []:
        content = msg.get("content") if isinstance(msg, dict) else None
        if isinstance(content, list):
            for p in content:
                if isinstance(p, dict) and p.get("type") == "image_url":
                    urls.append(p.get("image_url", {}).get("url", ""))
    return urls


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    fake: FakeOpenAIServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like vLLM/uvicorn
    disable_nagle_algorithm = True  # headers and body go out separately: without this, delayed ACKs add ~40 ms
    timeout = 30  # idle keep-alive connections end on their own
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # silence stderr
        pass

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.server.fake._track(self.connection, add=False)

    # ------------------------------------------------------------------------------------------ helpers

    def _send(self, status: int, body: bytes, ctype: str = "application/json", headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, obj: Any, headers: dict | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers=headers)

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _authorized(self) -> bool:
        key = self.server.fake.api_key
        if key is None or self.headers.get("Authorization") == f"Bearer {key}":
            return True
        self._json(401, {"error": {"message": "invalid or missing API key", "type": "authentication_error"}})
        return False

    def _read_body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    # ------------------------------------------------------------------------------------------- routes

    def do_GET(self) -> None:
        fake = self.server.fake
        fake._record(self, None)
        mode = fake.mode
        if mode == "drop":
            return self._drop()
        if mode == "error500":
            return self._json(500, {"error": {"message": "injected failure", "type": "server_error"}})
        if self.path == "/health":
            return self._send(200, b"", ctype="text/plain")
        if self.path == "/v1/models":
            if not self._authorized():
                return None
            return self._json(
                200, {"object": "list", "data": [{"id": fake.model, "object": "model", "owned_by": "fake"}]}
            )
        return self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_POST(self) -> None:
        fake = self.server.fake
        raw = self._read_body()
        try:
            req = json.loads(raw or b"{}")
        except ValueError:
            req = None
        fake._record(self, req)
        if self.path != "/v1/chat/completions":
            return self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
        if not self._authorized():
            return None
        if not isinstance(req, dict):
            return self._json(400, {"error": {"message": "request body is not a JSON object", "type": "bad_request"}})
        mode = fake.mode
        delay = fake.latency_s if fake.latency_s > 0 or mode != "slow" else 1.0
        if delay > 0 and fake._stopped.wait(delay):
            return self._drop()  # shutting down
        if fake._take_failure():
            headers = {"Retry-After": fake.retry_after} if fake.retry_after is not None else None
            return self._json(
                fake.fail_status, {"error": {"message": "injected failure", "type": "server_error"}}, headers=headers
            )
        if mode == "drop":
            return self._drop()
        if mode == "error500":
            headers = {"Retry-After": fake.retry_after} if fake.retry_after is not None else None
            return self._json(500, {"error": {"message": "injected failure", "type": "server_error"}}, headers=headers)
        if mode == "garbage":
            return self._send(200, b"<html>this is not json</html>", ctype="text/html")
        try:
            body = self._completion(req, empty=mode == "empty_content")
        except Exception as e:  # surface responder bugs as a server error the test will see
            return self._json(500, {"error": {"message": f"responder raised {e!r}", "type": "server_error"}})
        if mode == "truncated":
            return self._send(200, body[: max(1, len(body) // 2)])
        return self._send(200, body)

    def _completion(self, req: dict[str, Any], empty: bool) -> bytes:
        fake = self.server.fake
        content: str | None = None
        if not empty:
            reply = fake.responder(req) if fake.responder is not None else last_user_text(req)
            if isinstance(reply, dict):
                return json.dumps(reply).encode()
            content = str(reply)
        n = fake._next_id()
        prompt_tokens = len(last_user_text(req).split())
        completion_tokens = len((content or "").split())
        return json.dumps(
            {
                "id": f"chatcmpl-fake-{n}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": req.get("model", fake.model),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop" if content is not None else "length",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        ).encode()


class FakeOpenAIServer:
    """Fake OpenAI-compatible server on ``127.0.0.1:<ephemeral port>``, served from a daemon thread.

    Args:
        responder: ``responder(request_json) -> text`` (or a dict used as the whole response body); default
            echoes the last user text.
        latency_s: seconds slept before answering each chat request (all modes; changeable at runtime).
        fail_first: the first N chat requests answer ``fail_status`` (remaining count, changeable at runtime).
        fail_status: status of those failures.
        mode: one of :data:`MODES` (changeable at runtime through the ``mode`` attribute).
        api_key: when set, ``/v1/*`` routes require ``Authorization: Bearer <api_key>`` (401 otherwise).
        retry_after: ``Retry-After`` header value sent with injected failures (``None``: no header).
        model: model id reported by ``/v1/models``.
        lifetime_s: hard cap; the server shuts itself down after this many seconds.
    """

    def __init__(
        self,
        responder: Responder | None = None,
        latency_s: float = 0.0,
        fail_first: int = 0,
        fail_status: int = 500,
        mode: str = "ok",
        api_key: str | None = None,
        retry_after: str | float | None = None,
        model: str = "fake-model",
        lifetime_s: float = 120.0,
    ) -> None:
        self.responder = responder
        self.latency_s = float(latency_s)
        self.fail_first = int(fail_first)
        self.fail_status = int(fail_status)
        self.mode = mode
        self.api_key = api_key
        self.retry_after = retry_after
        self.model = model
        self._lock = threading.Lock()
        self._requests: list[dict[str, Any]] = []
        self._conns: set[socket.socket] = set()
        self._ids = 0
        self._closed = False
        self._stopped = threading.Event()  # set when closing starts (interrupts simulated latency)
        self._done = threading.Event()  # set when the port is released
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.fake = self
        self.port: int = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-openai", daemon=True
        )
        self._thread.start()
        self._timer = threading.Timer(lifetime_s, self.close)
        self._timer.daemon = True
        self._timer.start()

    # --------------------------------------------------------------------------------------- properties

    @property
    def mode(self) -> str:
        """The current fault-injection mode (one of :data:`MODES`)."""
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in MODES:
            raise ValueError(f"unknown FakeOpenAIServer mode {value!r}; valid: {', '.join(MODES)}")
        self._mode = value

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:PORT`` (where ``/health`` lives)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Copy of every received request: ``{"method", "path", "headers", "json", "time", "client_port"}``.

        ``headers`` keys are lower-case; ``json`` is the parsed body (``None`` for GET or a non-JSON body);
        ``time`` is ``time.monotonic()`` at arrival.
        """
        with self._lock:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        """The received ``POST /v1/chat/completions`` requests."""
        return [r for r in self.requests if r["method"] == "POST" and r["path"] == "/v1/chat/completions"]

    @property
    def closed(self) -> bool:
        """Whether the server is closed (explicitly or by its lifetime cap) and its port released."""
        return self._done.is_set()

    # --------------------------------------------------------------------------------------- lifecycle

    def __enter__(self) -> FakeOpenAIServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving, close the listening socket and cut open connections. Idempotent."""
        with self._lock:
            closing = self._closed
            self._closed = True
            conns = list(self._conns)
        if closing:  # another thread is closing (or closed) it: wait until the port is really released
            if threading.current_thread() is not self._thread:
                self._done.wait(5.0)
            return
        self._stopped.set()
        self._timer.cancel()
        try:
            if threading.current_thread() is not self._thread:
                self._httpd.shutdown()
            self._httpd.server_close()
            for c in conns:
                with contextlib.suppress(OSError):
                    c.shutdown(socket.SHUT_RDWR)
        finally:
            self._done.set()

    def clear(self) -> None:
        """Forget the recorded requests."""
        with self._lock:
            self._requests.clear()

    # -------------------------------------------------------------------------------- handler callbacks

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._conns.add(conn)
                closed = self._closed
            else:
                self._conns.discard(conn)
                return
        if closed:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def _record(self, handler: _Handler, body: Any) -> None:
        entry = {
            "method": handler.command,
            "path": handler.path,
            "headers": {k.lower(): v for k, v in handler.headers.items()},
            "json": body,
            "time": time.monotonic(),
            "client_port": handler.client_address[1],
        }
        with self._lock:
            self._requests.append(entry)

    def _take_failure(self) -> bool:
        with self._lock:
            if self.fail_first > 0:
                self.fail_first -= 1
                return True
            return False

    def _next_id(self) -> int:
        with self._lock:
            self._ids += 1
            return self._ids
