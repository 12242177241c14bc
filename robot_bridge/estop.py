"""Sources of the e-stop latch (:class:`robot_bridge.safety.EStop`): an HTTP endpoint, terminal keys, signals.

The HTTP endpoint is a tiny stdlib server bound to 127.0.0.1: ``POST /estop`` (anyone local may stop the robot),
``POST /reset`` (needs the token when one is set), ``GET /status``. Stopping never needs a token; resetting is
always an explicit act.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import signal
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any

from dppo_embodied.errors import ConfigError
from robot_bridge.safety import EStop


class _EStopHandler(BaseHTTPRequestHandler):
    server: _EStopHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, obj: dict[str, Any]) -> None:
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("/status", ""):
            return self._reply(200, self.server.owner.status())
        return self._reply(404, {"error": f"no route {self.path}; use POST /estop, POST /reset, GET /status"})

    def do_POST(self) -> None:
        owner = self.server.owner
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(min(n, 4096))
        route = self.path.rstrip("/")
        if route == "/estop":
            owner.estop.trigger("HTTP /estop", source="http")
            return self._reply(200, {"latched": True})
        if route == "/reset":
            token = owner.token
            got = self.headers.get("Authorization", "")
            if token is not None and not hmac.compare_digest(got.encode(), f"Bearer {token}".encode()):
                return self._reply(401, {"error": "reset needs 'Authorization: Bearer <token>'"})
            was = owner.estop.reset(source="http")
            return self._reply(200, {"latched": False, "was_latched": was})
        return self._reply(404, {"error": f"no route {self.path}; use POST /estop, POST /reset, GET /status"})


class _EStopHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    owner: EStopServer


class EStopServer:
    """``POST /estop``, ``POST /reset``, ``GET /status`` on 127.0.0.1 (stdlib, background thread).

    Args:
        estop: the latch.
        port: TCP port (0 = any free port; see :attr:`url`).
        host: bind address; only loopback addresses are accepted.
        token: when set, ``/reset`` needs ``Authorization: Bearer <token>`` (stopping never needs it).
        status: callable returning extra status fields.
    """

    def __init__(self, estop: EStop, port: int = 0, host: str = "127.0.0.1", token: str | None = None,
                 status: Callable[[], dict[str, Any]] | None = None) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ConfigError(f"the e-stop endpoint binds loopback only, got {host!r}; tunnel to it if remote")
        self.estop, self.token, self._status = estop, token, status
        self._httpd = _EStopHTTPServer((host, port), _EStopHandler)
        self._httpd.owner = self
        self.port = self._httpd.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="estop-http", daemon=True)
        self._thread.start()

    def status(self) -> dict[str, Any]:
        """Status JSON."""
        out: dict[str, Any] = {"latched": self.estop.latched, "reason": self.estop.reason}
        if self._status is not None:
            with contextlib.suppress(Exception):
                out.update(self._status())
        return out

    def close(self) -> None:
        """Stop the endpoint. Idempotent."""
        if self._thread.is_alive():
            self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> EStopServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class KeyboardEStop:
    """Operator keys on a text stream (stdin): Enter, ``e`` or ``s`` latch the stop; ``reset`` clears it; ``q``
    asks to quit.

    Args:
        estop: the latch.
        stream: the line stream (default ``sys.stdin``).
        on_quit: called on ``q``/``quit``.
    """

    STOP_WORDS = frozenset({"", "e", "s", "stop", "estop"})
    RESET_WORDS = frozenset({"reset", "r"})
    QUIT_WORDS = frozenset({"q", "quit", "exit"})

    def __init__(self, estop: EStop, stream: IO[str] | None = None, on_quit: Callable[[], None] | None = None) -> None:
        import sys

        self.estop, self.stream, self.on_quit = estop, stream or sys.stdin, on_quit
        self._thread = threading.Thread(target=self._run, name="estop-keys", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for line in self.stream:
            word = line.strip().lower()
            if word in self.STOP_WORDS:
                self.estop.trigger("operator key", source="key")
            elif word in self.RESET_WORDS:
                self.estop.reset(source="key")
            elif word in self.QUIT_WORDS:
                self.estop.trigger("operator quit", source="key")
                if self.on_quit is not None:
                    self.on_quit()
                return


def install_signal_estop(estop: EStop, on_quit: Callable[[], None] | None = None) -> dict[int, Any]:
    """SIGUSR1 latches the e-stop; SIGINT/SIGTERM latch it and ask to quit. Main thread only.

    Returns:
        The previous handlers (pass to :func:`restore_signals`).
    """
    def stop(signum: int, _frame: Any) -> None:
        estop.trigger(f"signal {signal.Signals(signum).name}", source="signal")

    def quit_(signum: int, frame: Any) -> None:
        stop(signum, frame)
        if on_quit is not None:
            on_quit()

    old: dict[int, Any] = {}
    for sig, handler in ((getattr(signal, "SIGUSR1", None), stop), (signal.SIGINT, quit_),
                         (signal.SIGTERM, quit_)):
        if sig is not None:
            old[sig] = signal.signal(sig, handler)
    return old


def restore_signals(old: dict[int, Any]) -> None:
    """Put back handlers saved by :func:`install_signal_estop`."""
    for sig, handler in old.items():
        signal.signal(sig, handler)
