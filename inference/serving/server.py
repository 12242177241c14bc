"""The ``transformers`` backend of ``dppo serve``: an OpenAI-compatible FastAPI app over a local VLM.

Routes: ``POST /v1/chat/completions`` (text + ``data:`` image URLs, ``max_tokens``, ``temperature``, ``top_p``,
``stop``, ``n``, ``seed`` (per-request sampling, :mod:`inference.sampling`), ``stream``, and the extension
``timeout_s``), ``GET /v1/models``, ``GET /health``. Concurrent
requests are micro-batched and scheduled fairly (:mod:`inference.serving.batching`).

Security (:mod:`inference.serving.security`): binds 127.0.0.1 by default; a non-loopback host is refused without an
API key; when a key is set, every route except ``/health`` checks ``Authorization: Bearer <key>`` (scheme in any
case, constant-time compare); without a key, browser requests from a foreign ``Origin`` get 403; ``POST`` bodies
must be ``application/json`` (415); images are inline data URLs only (nothing is fetched); no pickle; model text
is returned, never executed.

Budgets (every one answers with an OpenAI-style JSON error naming the limit):

* body size (413) and JSON nesting (400: a 100k-deep array is a bad request, not a crash);
* images: count, pixels per image and per request from the header before decoding (413), downscaled to the
  processor's ``max_pixels`` once decoded (:mod:`inference.serving.images`); at most ``decode_slots`` requests
  decode at a time, and waiting requests may hold ``max_queued_mpixels`` of images (503 beyond);
* work: ``n * max_tokens`` per request (400), prompt + ``max_tokens`` within the model's context (400);
* time: each request has a deadline, ``request_timeout_s`` after arrival or the request's ``timeout_s`` (at most
  ``max_request_timeout_s``). A request still queued at its deadline gets **504** (``type: "timeout_error"``);
  a request being generated at its deadline is cut and answered **200 with ``finish_reason: "length"``** and the
  header ``X-Deadline-Exceeded: true``: the tokens already generated are returned rather than discarded, and
  OpenAI clients do not retry it (they retry 408 and 5xx, which would multiply the load on a saturated server).

``/health`` answers ``{"status": "ok" | "saturated" | "down", ...}`` (503 only when down) with the queue depth,
the oldest wait and how long the running batch has run; with a key set, callers without it get the status only.

In-process use (tests, benchmarks)::

    with ServerThread(create_app(batcher, "tiny")) as srv:
        client = ChatClient(ClientConfig(base_url=srv.url, model="tiny"))
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

from dppo_embodied.errors import ConfigError, DppoError
from dppo_embodied.imports import require

require("fastapi", extra="serve")
require("uvicorn", extra="serve")

import uvicorn  # noqa: E402
from fastapi import FastAPI, Request  # noqa: E402
from fastapi.responses import JSONResponse, Response, StreamingResponse  # noqa: E402
from starlette.concurrency import run_in_threadpool  # noqa: E402

from inference.serving.backend import PolicyBackend, check_context  # noqa: E402
from inference.serving.batching import MicroBatcher  # noqa: E402
from inference.serving.config import ServeConfig  # noqa: E402
from inference.serving.protocol import (  # noqa: E402
    Limits,
    ParsedChat,
    RequestError,
    completion_body,
    error_body,
    models_body,
    parse_chat_request,
    stream_chunks,
)
from inference.serving.security import (  # noqa: E402
    bearer_matches,
    is_json_content_type,
    is_loopback,
    origin_allowed,
)

__all__ = ["ServeConfig", "ServerThread", "bind_socket", "build_batcher", "create_app", "is_loopback",
           "make_uvicorn"]

logger = logging.getLogger(__name__)


def _error(message: str, status: int, type_: str = "invalid_request_error",
           headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(message, type_, None, status), status_code=status, headers=headers)


def _unauthorized() -> JSONResponse:
    return _error("invalid or missing API key: send 'Authorization: Bearer <key>' (the server's --api-key)", 401,
                  "authentication_error", {"WWW-Authenticate": "Bearer"})


async def _read_body(request: Request, max_bytes: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            too_big = int(declared) > max_bytes
        except ValueError:
            raise RequestError("invalid Content-Length header") from None
        if too_big:
            raise RequestError(f"request body of {declared} bytes exceeds {max_bytes} bytes; send fewer or "
                               "smaller images", status=413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise RequestError(f"request body exceeds {max_bytes} bytes; send fewer or smaller images", status=413)
        chunks.append(chunk)
    return b"".join(chunks)


def _admit(raw: bytes, batcher: MicroBatcher, served_model: str, limits: Limits) -> tuple[ParsedChat, int]:
    """Decode and validate a body, count its prompt tokens and check them against the context (worker thread)."""
    try:
        body = json.loads(raw)
    except RecursionError:
        raise RequestError("the request body is nested too deeply to be a chat request") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise RequestError(f"the request body is not valid JSON ({e})") from None
    parsed = parse_chat_request(body, served_model, limits)
    max_len = batcher.backend.max_model_len
    check_context(max_len, parsed.params.max_tokens, text_chars=parsed.text_chars)
    try:
        prompt_tokens = batcher.backend.prompt_tokens(parsed.request)
    except DppoError:
        raise
    except Exception as e:  # e.g. the chat template rejects the conversation
        raise RequestError(f"the conversation cannot be rendered with the model's chat template "
                           f"({type(e).__name__}: {e})", param="messages") from None
    check_context(max_len, parsed.params.max_tokens, prompt_tokens=prompt_tokens)
    return parsed, prompt_tokens


def create_app(batcher: MicroBatcher, served_model: str, api_key: str | None = None, limits: Limits | None = None,
               max_body_bytes: int = 32 * 1024 * 1024, decode_slots: int = 2,
               allowed_origins: list[str] | None = None, step_prompt: str | None = None) -> FastAPI:
    """Build the FastAPI app.

    Args:
        batcher: the micro-batcher owning the model.
        served_model: the model id clients must send (or omit).
        api_key: bearer token checked on every route but ``/health`` (``None`` = no auth).
        limits: request limits (``keep_pixels`` defaults to the backend's processor size).
        max_body_bytes: request body cap.
        decode_slots: requests decoded (JSON, images, tokens) at the same time.
        allowed_origins: browser origins accepted besides loopback when there is no key.
        step_prompt: the served checkpoint's step prompt style (its ``dppo_step_prompt.json``), advertised in
            ``GET /v1/models``; ``None`` advertises none.

    Returns:
        The app (docs and OpenAPI routes are disabled).
    """
    limits = limits or Limits()
    if limits.keep_pixels is None:
        limits = dataclasses.replace(limits, keep_pixels=getattr(batcher.backend, "keep_pixels", None))
    origins = frozenset(o.rstrip("/") for o in allowed_origins or ())
    created = int(time.time())
    app = FastAPI(title="dppo serve", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.batcher, app.state.limits = batcher, limits
    slots = asyncio.Semaphore(decode_slots)

    @app.middleware("http")
    async def check_request(request: Request, call_next: Any) -> Response:
        if request.url.path != "/health":
            if api_key is not None:
                if not bearer_matches(request.headers.get("authorization"), api_key):
                    return _unauthorized()
            elif not origin_allowed(request.headers.get("origin"), origins):
                return _error(f"cross-site request refused: Origin {request.headers.get('origin')!r} is not this "
                              "machine. Without an API key this server only serves local clients; call it from "
                              "a program (no Origin header), or start it with --api-key", 403,
                              "permission_error")
            if request.method == "POST" and not is_json_content_type(request.headers.get("content-type")):
                return _error(f"Content-Type must be application/json, got "
                              f"{request.headers.get('content-type')!r}; send the body as JSON", 415)
        return await call_next(request)

    @app.get("/health")
    async def health(request: Request) -> JSONResponse:
        info = batcher.health()
        code = 503 if info["status"] == "down" else 200
        if api_key is not None and not bearer_matches(request.headers.get("authorization"), api_key):
            info = {"status": info["status"]}  # the load figures are for operators only
        return JSONResponse(info, status_code=code)

    @app.get("/v1/models")
    async def models() -> JSONResponse:
        return JSONResponse(models_body(served_model, created, step_prompt))

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        t_arrival = time.monotonic()
        try:
            raw = await _read_body(request, max_body_bytes)
            async with slots:
                parsed, prompt_tokens = await run_in_threadpool(_admit, raw, batcher, served_model, limits)
            left = parsed.timeout_s - (time.monotonic() - t_arrival)
            if left <= 0:
                raise RequestError(f"the request's deadline of {parsed.timeout_s:g} s passed while it was decoded; "
                                   "the server is saturated (GET /health): retry later", status=504,
                                   type_="timeout_error")
            future = batcher.submit(parsed.request, prompt_tokens, left, parsed.pixels)
            try:
                choices, prompt_tokens = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), left)
            except asyncio.TimeoutError:
                if future.cancel():  # still queued: leave the queue now rather than when the worker is free
                    raise RequestError(
                        f"the request's deadline of {parsed.timeout_s:g} s passed while it waited in the queue: the "
                        "server is saturated (GET /health). Retry later, lower the load, or send a larger "
                        "timeout_s", status=504, type_="timeout_error") from None
                choices, prompt_tokens = await asyncio.wrap_future(future)  # running: cut at its deadline
        except RequestError as e:
            return JSONResponse(e.body(), status_code=e.status)
        except DppoError as e:  # e.g. MediaError from the processor
            return _error(str(e), 400)
        except Exception as e:
            logger.exception("chat completion failed")
            return _error(f"generation failed: {type(e).__name__}: {e}", 500, "server_error")
        out = completion_body(served_model, choices, prompt_tokens)
        headers = {"X-Deadline-Exceeded": "true"} if any(c.deadline_hit for c in choices) else None
        if not parsed.stream:
            return JSONResponse(out, headers=headers)

        async def events() -> AsyncIterator[bytes]:
            for chunk in stream_chunks(out):
                yield b"data: " + json.dumps(chunk).encode() + b"\n\n"
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)

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
    """Load the checkpoint as a :class:`~inference.policy.VLMPolicy` and wrap it in a :class:`MicroBatcher`."""
    from inference.policy import VLMPolicy

    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    policy = VLMPolicy.from_pretrained(cfg.model, dtype=cfg.dtype, device=cfg.device, max_pixels=cfg.max_pixels,
                                       max_new_tokens=cfg.default_max_tokens, batch_size=cfg.max_batch_size)
    try:
        backend = PolicyBackend(policy, max_model_len=cfg.max_model_len)
    except ValueError as e:
        raise ConfigError(f"--max-model-len: {e}") from e
    return MicroBatcher(backend, max_batch_size=cfg.max_batch_size, window_s=cfg.batch_window_ms / 1000.0,
                        max_queue=cfg.max_queue, max_queued_pixels=int(cfg.max_queued_mpixels * 1e6),
                        saturation_wait_s=cfg.saturation_wait_s)


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
