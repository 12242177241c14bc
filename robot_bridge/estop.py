"""Sources of the e-stop latch (:class:`robot_bridge.safety.EStop`): an HTTP endpoint, terminal keys, signals.

The HTTP endpoint is a tiny stdlib server bound to loopback:

* ``POST /estop`` latches the stop. It needs nothing (no token, any body, any ``Origin``): pressing the stop must
  never be refused, and a stop is always safe, even when a stranger sends it.
* ``POST /reset`` un-latches it, and every other state-changing route would follow the same rules: it needs the
  operator token (``Authorization: Bearer <token>``; a random one is generated when none is given, for the
  operator to read on the terminal), ``Content-Type: application/json`` (a web page cannot send that cross-site
  without a CORS preflight, which this server never grants) and no foreign ``Origin`` / ``Host`` (cross-site
  requests and DNS rebinding). A reset re-arms the *next* episode: the episode that was stopped stays stopped.
* ``GET /status``: read-only.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import secrets
import signal
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any
from urllib.parse import urlsplit

from dppo_embodied.errors import ConfigError
from robot_bridge.safety import EStop

logger = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: largest request body read (bytes); a larger one is refused with 413
MAX_BODY = 4096
_ROUTES = "use POST /estop, POST /reset (token), GET /status"


class _EStopHandler(BaseHTTPRequestHandler):
    server: _EStopHTTPServer
    timeout = 5.0  # a silent client cannot hold a handler thread for long

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, obj: dict[str, Any]) -> None:
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("/status", ""):
            return self._reply(200, self.server.owner.status())
        return self._reply(404, {"error": f"no route {self.path}; {_ROUTES}"})

    def _body(self) -> bytes | None:
        """The request body (``None`` after replying 400/413 to a bad or too long one)."""
        try:
            n = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            n = -1
        if n < 0:
            self._reply(400, {"error": "bad Content-Length"})
            return None
        if n > MAX_BODY:
            with contextlib.suppress(OSError):  # drain a little, so the client reads the answer, not a reset
                left = min(n, 256 * MAX_BODY)
                while left > 0 and (chunk := self.rfile.read(min(left, 65536))):
                    left -= len(chunk)
            self._reply(413, {"error": f"body over {MAX_BODY} bytes; send {{}} or nothing"})
            return None
        return self.rfile.read(n) if n else b""

    def do_POST(self) -> None:
        owner = self.server.owner
        route = self.path.rstrip("/")
        if route == "/estop":  # never refused, whatever the request: stopping is always safe
            owner.estop.trigger("HTTP /estop", source="http")
            with contextlib.suppress(OSError, ValueError):  # latched already: the body is only drained
                n = int(self.headers.get("Content-Length") or 0)
                if 0 < n <= MAX_BODY:
                    self.rfile.read(n)
            return self._reply(200, {"latched": True})
        body = self._body()  # read first: answering with the body unread could reset the connection
        if body is None:
            owner.refused += 1
            return None
        if route != "/reset":
            return self._reply(404, {"error": f"no route {self.path}; {_ROUTES}"})
        refusal = owner.check_operator(self.headers)
        if refusal is not None:
            status, message = refusal
            owner.refused += 1
            logger.warning("e-stop endpoint: refused POST %s (%s)", route, message)
            return self._reply(status, {"error": message})
        try:
            data = json.loads(body) if body.strip() else {}
        except (ValueError, RecursionError):
            data = None
        if not isinstance(data, dict):
            return self._reply(400, {"error": "the body must be a JSON object (e.g. {})"})
        was = owner.estop.reset(source="http")
        return self._reply(200, {"latched": False, "was_latched": was})


class _EStopHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    owner: EStopServer


class EStopServer:
    """``POST /estop``, ``POST /reset``, ``GET /status`` on a loopback address (stdlib, background thread).

    Args:
        estop: the latch.
        port: TCP port (0 = any free port; see :attr:`url`).
        host: bind address; only loopback addresses are accepted.
        token: the operator token ``/reset`` needs (``Authorization: Bearer <token>``); ``None`` or empty =
            generate one (:attr:`token`, :attr:`token_generated`). Stopping never needs it.
        status: callable returning extra status fields.

    Raises:
        ConfigError: a non-loopback host.
    """

    def __init__(self, estop: EStop, port: int = 0, host: str = "127.0.0.1", token: str | None = None,
                 status: Callable[[], dict[str, Any]] | None = None) -> None:
        if host not in LOOPBACK:
            raise ConfigError(f"the e-stop endpoint binds loopback only, got {host!r}; tunnel to it if remote")
        self.token_generated = not token
        self.token: str = token or secrets.token_urlsafe(18)
        self.estop, self._status = estop, status
        self.refused = 0
        self._httpd = _EStopHTTPServer((host, port), _EStopHandler)
        self._httpd.owner = self
        self.port = self._httpd.server_address[1]
        self.url = f"http://{'[::1]' if host == '::1' else host}:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="estop-http", daemon=True)
        self._thread.start()

    def check_operator(self, headers: Any) -> tuple[int, str] | None:
        """``None`` when a state-changing request may proceed, else ``(HTTP status, why)``: a foreign ``Origin``
        or ``Host`` (403), a missing or wrong operator token (401), a body that is not JSON (415)."""
        origin = headers.get("Origin")
        if origin is not None and not self._local(origin, with_scheme=True):
            return 403, f"cross-origin request from {origin!r} refused"
        if not self._local(headers.get("Host") or "", with_scheme=False):
            return 403, f"Host {headers.get('Host')!r} is not this loopback endpoint"
        scheme, _, credential = (headers.get("Authorization") or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(credential.strip().encode(), self.token.encode()):
            return 401, "needs the operator token: 'Authorization: Bearer <token>' (printed by dppo bridge at start)"
        ctype = (headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        if ctype != "application/json":
            return 415, f"Content-Type must be application/json, got {ctype or 'none'!r}"
        return None

    def _local(self, value: str, with_scheme: bool) -> bool:
        """Whether an ``Origin`` (``http://host:port``) or ``Host`` (``host:port``) names this endpoint."""
        try:
            parts = urlsplit(value if with_scheme else f"http://{value}")
            host, port = parts.hostname, parts.port
        except ValueError:
            return False
        if with_scheme and parts.scheme != "http":
            return False
        return host in LOOPBACK and port == self.port

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
