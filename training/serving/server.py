"""The ``transformers`` backend of ``dppo serve``: an OpenAI-compatible FastAPI app over a local VLM.

Routes: ``POST /v1/chat/completions`` (text + ``data:`` image URLs, ``max_tokens``, ``temperature``, ``top_p``,
``stop``, ``n``, ``stream``), ``GET /v1/models``, ``GET /health``. Concurrent requests are micro-batched
(:mod:`training.serving.batching`).

Security: binds 127.0.0.1 by default; a non-loopback host is refused without an API key; when a key is set,
every route except ``/health`` checks ``Authorization: Bearer <key>`` (constant-time compare); bodies are JSON
with a size cap; images are inline data URLs only (nothing is fetched); no pickle; model text is returned, never
executed. ``/health`` answers ``{"status": "ok"}`` and nothing else, so load balancers can probe it.

In-process use (tests, benchmarks)::

    with ServerThread(create_app(batcher, "tiny")) as srv:
        client = ChatClient(ClientConfig(base_url=srv.url, model="tiny"))
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dppo_embodied.errors import ConfigError, DppoError
from dppo_embodied.imports import require

require("fastapi", extra="serve")
require("uvicorn", extra="serve")

import uvicorn  # noqa: E402
from fastapi import FastAPI, Request  # noqa: E402
from fastapi.responses import JSONResponse, Response, StreamingResponse  # noqa: E402
from starlette.concurrency import run_in_threadpool  # noqa: E402

from training.serving.batching import MicroBatcher, PolicyBackend  # noqa: E402
from training.serving.protocol import (  # noqa: E402
    Limits,
    RequestError,
    completion_body,
    error_body,
    models_body,
    parse_chat_request,
    stream_chunks,
)

logger = logging.getLogger(__name__)

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine (``0.0.0.0`` and ``::`` are not)."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class ServeConfig:
    """Settings of ``dppo serve``.

    Attributes:
        model: checkpoint folder (or hub id, with network) of any of our VLMs, tiny or real.
        backend: ``"transformers"`` (this server) or ``"vllm"`` (launch ``vllm serve``).
        host: bind address; 127.0.0.1 by default. Non-loopback hosts need ``api_key``.
        port: TCP port (0 = any free port, printed at start-up).
        api_key: bearer token checked on every ``/v1`` request (``None`` = no auth; loopback only).
        served_model_name: model id clients send (default: the checkpoint folder's name).
        max_batch_size: requests generated together.
        batch_window_ms: how long the batcher waits for more requests after the first one.
        default_max_tokens: ``max_tokens`` when a request gives none.
        max_tokens_cap: largest ``max_tokens`` accepted.
        max_images: images per request.
        max_body_mb: request body cap in MiB.
        max_queue: waiting requests before answering 503.
        dtype: model dtype (``float32``, ``bfloat16``, ``float16``).
        device: torch device (``None`` = CUDA when available, else CPU).
        max_pixels: optional bound on pixels per image in the processor (bounds vision tokens).
        threads: torch intra-op threads (``None`` = torch default).
        log_level: uvicorn log level.
        extra_args: extra arguments passed to ``vllm serve`` verbatim (vllm backend only).
    """

    model: str
    backend: str = "transformers"
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = field(default=None, repr=False)
    served_model_name: str | None = None
    max_batch_size: int = 8
    batch_window_ms: float = 5.0
    default_max_tokens: int = 256
    max_tokens_cap: int = 4096
    max_images: int = 8
    max_body_mb: float = 32.0
    max_queue: int = 256
    dtype: str = "float32"
    device: str | None = None
    max_pixels: int | None = None
    threads: int | None = None
    log_level: str = "warning"
    extra_args: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.model:
            raise ConfigError("--model is required: a checkpoint folder (e.g. one built by 'dppo train build-tiny')")
        if self.backend not in ("transformers", "vllm"):
            raise ConfigError(f"--backend {self.backend!r} is unknown; use 'transformers' or 'vllm'")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port {self.port} is out of range 0..65535")
        if self.api_key is not None and not self.api_key.strip():
            raise ConfigError("--api-key is empty; give a real secret or leave it out (loopback only)")
        if not is_loopback(self.host) and not self.api_key:
            raise ConfigError(
                f"refusing to serve on non-loopback host {self.host!r} without an API key: anyone on the network "
                "could use the model. Pass --api-key SECRET (or set DPPO_API_KEY), or bind --host 127.0.0.1 and "
                "reach it through an SSH tunnel")
        for name in ("max_batch_size", "default_max_tokens", "max_tokens_cap", "max_images", "max_queue"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        if self.default_max_tokens > self.max_tokens_cap:
            raise ConfigError(f"default_max_tokens {self.default_max_tokens} exceeds max_tokens_cap "
                              f"{self.max_tokens_cap}")
        if self.batch_window_ms < 0 or self.max_body_mb <= 0:
            raise ConfigError("batch_window_ms must be >= 0 and max_body_mb > 0")

    @property
    def model_name(self) -> str:
        """The model id served (``served_model_name`` or the checkpoint folder's name)."""
        return self.served_model_name or Path(str(self.model).rstrip("/")).name or str(self.model)

    def limits(self) -> Limits:
        """Request limits derived from this config."""
        return Limits(default_max_tokens=self.default_max_tokens, max_tokens_cap=self.max_tokens_cap,
                      max_images=self.max_images)


def _unauthorized() -> JSONResponse:
    return JSONResponse(
        error_body("invalid or missing API key: send 'Authorization: Bearer <key>' (the server's --api-key)",
                   "authentication_error", None, 401),
        status_code=401, headers={"WWW-Authenticate": "Bearer"})


async def _read_body(request: Request, max_bytes: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > max_bytes:
                raise RequestError(f"request body of {declared} bytes exceeds {max_bytes} bytes; send fewer or "
                                   "smaller images", status=413)
        except ValueError:
            raise RequestError("invalid Content-Length header") from None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise RequestError(f"request body exceeds {max_bytes} bytes; send fewer or smaller images", status=413)
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(batcher: MicroBatcher, served_model: str, api_key: str | None = None, limits: Limits | None = None,
               max_body_bytes: int = 32 * 1024 * 1024) -> FastAPI:
    """Build the FastAPI app.

    Args:
        batcher: the micro-batcher owning the model.
        served_model: the model id clients must send (or omit).
        api_key: bearer token checked on every route but ``/health`` (``None`` = no auth).
        limits: request limits.
        max_body_bytes: request body cap.

    Returns:
        The app (docs and OpenAPI routes are disabled).
    """
    limits = limits or Limits()
    created = int(time.time())
    app = FastAPI(title="dppo serve", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.batcher = batcher
    expected = f"Bearer {api_key}".encode() if api_key else None

    @app.middleware("http")
    async def check_key(request: Request, call_next: Any) -> Response:
        if expected is not None and request.url.path != "/health":
            got = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(got, expected):
                return _unauthorized()
        return await call_next(request)

    @app.get("/health")
    async def health() -> JSONResponse:
        ok = batcher.alive
        return JSONResponse({"status": "ok" if ok else "down"}, status_code=200 if ok else 503)

    @app.get("/v1/models")
    async def models() -> JSONResponse:
        return JSONResponse(models_body(served_model, created))

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        try:
            raw = await _read_body(request, max_body_bytes)
            try:
                body = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as e:
                raise RequestError(f"the request body is not valid JSON ({e})") from None
            parsed = await run_in_threadpool(parse_chat_request, body, served_model, limits)
            choices, prompt_tokens = await asyncio.wrap_future(batcher.submit(parsed.request, parsed.params))
        except RequestError as e:
            return JSONResponse(e.body(), status_code=e.status)
        except DppoError as e:  # e.g. MediaError from the processor
            return JSONResponse(error_body(str(e), "invalid_request_error", None, 400), status_code=400)
        except Exception as e:
            logger.exception("chat completion failed")
            return JSONResponse(error_body(f"generation failed: {type(e).__name__}: {e}", "server_error", None, 500),
                                status_code=500)
        out = completion_body(served_model, choices, prompt_tokens)
        if not parsed.stream:
            return JSONResponse(out)

        async def events() -> AsyncIterator[bytes]:
            for chunk in stream_chunks(out):
                yield b"data: " + json.dumps(chunk).encode() + b"\n\n"
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind a listening TCP socket (port 0 = any free port), so the port is known before serving starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must be IPPROTO_TCP (not 0) for asyncio to set TCP_NODELAY on accepted connections; without it every
    # response waits ~40 ms for the client's delayed ACK (headers and body go out as two segments)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise ConfigError(f"cannot bind {host}:{port} ({e}); pick another --port or stop what uses it") from e
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def build_batcher(cfg: ServeConfig) -> MicroBatcher:
    """Load the checkpoint as a :class:`~training.policy.VLMPolicy` and wrap it in a :class:`MicroBatcher`."""
    from training.policy import VLMPolicy

    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    policy = VLMPolicy.from_pretrained(cfg.model, dtype=cfg.dtype, device=cfg.device, max_pixels=cfg.max_pixels,
                                       max_new_tokens=cfg.default_max_tokens, batch_size=cfg.max_batch_size)
    return MicroBatcher(PolicyBackend(policy), max_batch_size=cfg.max_batch_size,
                        window_s=cfg.batch_window_ms / 1000.0, max_queue=cfg.max_queue)


def make_uvicorn(app: FastAPI, log_level: str = "warning") -> uvicorn.Server:
    """A uvicorn server for ``app`` (keep-alive on, no access log, no proxy headers)."""
    config = uvicorn.Config(app, log_level=log_level, access_log=False, proxy_headers=False,
                            timeout_keep_alive=30, server_header=False, date_header=False)
    return uvicorn.Server(config)


class ServerThread:
    """Serve an app from a background thread on ``127.0.0.1:<free port>`` (tests, benchmarks, notebooks).

    Args:
        app: the FastAPI app.
        host: bind address.
        port: port (0 = free port).
        startup_timeout_s: how long :meth:`start` waits for the server to accept connections.
    """

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0, startup_timeout_s: float = 20.0) -> None:
        self.app, self.startup_timeout_s = app, startup_timeout_s
        self._sock = bind_socket(host, port)
        self.host, self.port = host, self._sock.getsockname()[1]
        self.server = make_uvicorn(app)
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._sock]},
                                        name="dppo-serve", daemon=True)

    @property
    def url(self) -> str:
        """The API root, ``http://HOST:PORT/v1``."""
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> ServerThread:
        """Start serving and wait until it is up."""
        self._thread.start()
        t_end = time.monotonic() + self.startup_timeout_s
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > t_end:
                self.stop()
                raise DppoError(f"the in-process server did not start within {self.startup_timeout_s} s")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving and release the port. Idempotent."""
        self.server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(10.0)
        with contextlib.suppress(OSError):
            self._sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
