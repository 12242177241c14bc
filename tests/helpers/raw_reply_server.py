"""A loopback HTTP server that answers every request with the same raw bytes (stdlib only), for replies no JSON
encoder would produce (e.g. 100,000 nested brackets).

    with RawReplyServer(b"[" * 100_000 + b"]" * 100_000) as srv:
        ChatClient(ClientConfig(base_url=srv.url, model="m")).chat(...)   # srv.url ends with /v1

It stops itself after ``lifetime_s`` even when a test forgets to close it.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 10

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        if n > 0:
            self.rfile.read(n)
        owner = self.server.owner
        with owner.lock:
            owner.hits += 1
        self.send_response(owner.status)
        self.send_header("Content-Type", owner.content_type)
        self.send_header("Content-Length", str(len(owner.body)))
        self.end_headers()
        self.wfile.write(owner.body)

    do_GET = do_POST = _answer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: RawReplyServer


class RawReplyServer:
    """Answers ``status`` + ``body`` (``content_type``) to every request on 127.0.0.1; :attr:`hits` counts them.

    Args:
        body: the raw response body.
        status: HTTP status.
        content_type: the ``Content-Type`` header.
        lifetime_s: the server closes itself after this long.
    """

    def __init__(self, body: bytes, status: int = 200, content_type: str = "application/json",
                 lifetime_s: float = 60.0) -> None:
        self.body, self.status, self.content_type = body, status, content_type
        self.hits = 0
        self.lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name="raw-reply-server")
        self._thread.start()
        self._timer = threading.Timer(lifetime_s, self.close)
        self._timer.daemon = True
        self._timer.start()
        self._closed = False

    def close(self) -> None:
        """Stop serving. Idempotent."""
        with self.lock:
            if self._closed:
                return
            self._closed = True
        self._timer.cancel()
        if threading.current_thread() is not self._thread:
            self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> RawReplyServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
