"""OpenAI-compatible chat client (vLLM, ``dppo serve``, OpenAI): one keep-alive connection pool, retries, batches.

Used by the evaluation harness (openai backend), the teacher in training and the robot bridge, so it is
torch-free, thread-safe and predictable under a latency budget:

* one :class:`httpx.Client` per :class:`ChatClient` (keep-alive pool sized to ``concurrency``), safe to share
  between threads; loopback servers are never reached through an ``HTTP(S)_PROXY`` from the environment;
* retries on connection errors, timeouts, HTTP 408/429/5xx and malformed 200 responses, with exponential
  backoff and full jitter (capped), honouring ``Retry-After``; other 4xx fail at once with :class:`ServerError`;
* ``timeout_s`` bounds each attempt; ``deadline_s`` (optional) bounds the whole call including retries, which
  is what a planner loop with a hard budget wants;
* every failure is a :class:`~dppo_embodied.errors.ClientError` whose message names the URL, the last error and
  what to do.

Settings live in :mod:`dppo_embodied.client_config`, message building in :mod:`dppo_embodied.messages` and the
retry policy, response decoding and :class:`ChatResponse` in :mod:`dppo_embodied.http_retry`; their public names are
re-exported here.

Example::

    cfg = ClientConfig(base_url="http://127.0.0.1:8000/v1", model="Qwen/Qwen2.5-VL-7B-Instruct")
    with ChatClient(cfg) as client:
        msgs = build_messages("Where is the red cube?", images=[frame], system=SYSTEM_PROMPT, max_side=448)
        reply = client.chat(msgs, max_tokens=128)
        print(reply.text)
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any
from urllib.parse import urlsplit

import httpx

from dppo_embodied import __version__
from dppo_embodied.client_config import API_KEY_ENV_VARS as API_KEY_ENV_VARS
from dppo_embodied.client_config import ClientConfig
from dppo_embodied.errors import ClientError, ConfigError, ServerError
from dppo_embodied.http_retry import (
    MAX_RETRY_AFTER_S,
    RETRY_STATUSES,
    ChatResponse,
    _decode_json,
    _parse_chat,
    _retry_after,
    _Retryable,
    _snippet,
    _status_hint,
    give_up,
)
from dppo_embodied.images import ImageLike as ImageLike
from dppo_embodied.images import to_data_url as to_data_url
from dppo_embodied.messages import Message
from dppo_embodied.messages import build_messages as build_messages
from dppo_embodied.messages import image_part as image_part

logger = logging.getLogger(__name__)

_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


# --------------------------------------------------------------------------------------------------- client


class ChatClient:
    """Thread-safe client of an OpenAI-compatible ``/v1/chat/completions`` server.

    Use as a context manager (or call :meth:`close`) so the connection pool is released.

    Args:
        config: the client settings.
        transport: optional custom httpx transport (tests, e.g. :class:`httpx.MockTransport`).
    """

    def __init__(self, config: ClientConfig, *, transport: httpx.BaseTransport | None = None) -> None:
        if not isinstance(config, ClientConfig):
            raise ConfigError(f"ChatClient needs a ClientConfig, got {type(config).__name__}")
        self.config = config
        self.chat_url = f"{config.base_url}/chat/completions"
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"dppo-embodied/{__version__}",
        }
        key = config.resolved_api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        pool = config.concurrency + 2  # headroom so health()/list_models() never queue behind a full batch
        self._http = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(config.timeout_s, connect=config.connect_timeout_s),
            limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool, keepalive_expiry=30.0),
            # A proxy from the environment must never sit between us and a loopback server.
            trust_env=urlsplit(config.base_url).hostname not in _LOOPBACK_HOSTS,
            follow_redirects=False,
            transport=transport,
        )
        self._closed = False
        self._close_lock = threading.Lock()

    # ---------------------------------------------------------------------------------------- lifecycle

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool. Idempotent; later calls raise :class:`ClientError`."""
        with self._close_lock:
            if not self._closed:
                self._closed = True
                self._http.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def __repr__(self) -> str:
        return f"ChatClient(base_url={self.config.base_url!r}, model={self.config.model!r})"

    # ---------------------------------------------------------------------------------------- requests

    def _request(
        self,
        method: str,
        url: str,
        body: bytes | None,
        parse: Callable[[Any], Any],
        timeout_s: float | None,
        deadline_s: float | None,
    ) -> tuple[Any, int]:
        """Send with retries; return ``(parse(json), attempts)`` or raise ClientError/ServerError."""
        cfg = self.config
        timeout = cfg.timeout_s if timeout_s is None else timeout_s
        deadline_s = cfg.deadline_s if deadline_s is None else deadline_s
        t_end = None if deadline_s is None else time.monotonic() + deadline_s
        last: _Retryable | None = None
        attempts = 0
        gave_up_early = False
        for attempt in range(cfg.max_retries + 1):
            if self._closed:
                raise ClientError(f"{method} {url}: the ChatClient is closed; create a new one")
            t = timeout
            if t_end is not None:
                remaining = t_end - time.monotonic()
                if remaining <= 0:
                    gave_up_early = True
                    break
                t = min(t, remaining)
            attempts += 1
            t0 = time.perf_counter()
            try:
                resp = self._http.request(
                    method,
                    url,
                    content=body,
                    timeout=httpx.Timeout(t, connect=min(cfg.connect_timeout_s, t)),
                )
            except httpx.TimeoutException as e:
                last = _Retryable(f"timed out after {t:.3g} s ({type(e).__name__})", "timeout")
            except httpx.TransportError as e:
                last = _Retryable(f"{type(e).__name__}: {e or 'connection failed'}", "connect")
            except RuntimeError as e:  # httpx: "client has been closed" (closed from another thread)
                if self._closed:
                    raise ClientError(f"{method} {url}: the ChatClient was closed during the request") from e
                raise
            else:
                dt = time.perf_counter() - t0
                status = resp.status_code
                logger.debug("%s %s -> %d in %.3f s (attempt %d)", method, url, status, dt, attempts)
                if 200 <= status < 300:
                    try:
                        return parse(_decode_json(resp)), attempts
                    except _Retryable as e:
                        last = e
                elif status in RETRY_STATUSES or status >= 500:
                    last = _Retryable(
                        f"HTTP {status}: {_snippet(resp.text)}",
                        "status",
                        retry_after=_retry_after(resp),
                        status=status,
                    )
                else:
                    err = ServerError(
                        f"{method} {url} returned HTTP {status}: {_snippet(resp.text) or '(empty body)'}; "
                        f"{_status_hint(status, cfg)}"
                    )
                    err.status = status  # type: ignore[attr-defined]
                    raise err
            if attempt == cfg.max_retries:
                break
            if last.retry_after is not None:
                wait = min(last.retry_after, MAX_RETRY_AFTER_S)
            else:
                wait = random.uniform(0.0, min(cfg.backoff_cap_s, cfg.backoff_s * (2.0**attempt)))
            if t_end is not None and time.monotonic() + wait >= t_end:
                gave_up_early = True
                break
            logger.warning(
                "%s %s attempt %d/%d failed (%s); retrying in %.2f s",
                method,
                url,
                attempts,
                cfg.max_retries + 1,
                last,
                wait,
            )
            if wait > 0:
                time.sleep(wait)
        raise give_up(method, url, last, attempts, deadline_s if gave_up_early else None)

    def _payload(
        self,
        messages: Sequence[Message],
        max_tokens: int | None,
        temperature: float | None,
        stop: str | Sequence[str] | None,
        extra: dict[str, Any],
    ) -> bytes:
        if not isinstance(messages, (list, tuple)) or not messages:
            raise ClientError("chat() needs a non-empty list of messages; build one with build_messages()")
        cfg = self.config
        payload: dict[str, Any] = dict(cfg.extra_body)
        payload["model"] = cfg.model
        payload["messages"] = list(messages)
        mt = cfg.max_tokens if max_tokens is None else max_tokens
        if mt is not None:
            payload["max_tokens"] = mt
        temp = cfg.temperature if temperature is None else temperature
        if temp is not None:
            payload["temperature"] = temp
        if stop is not None:
            payload["stop"] = [stop] if isinstance(stop, str) else list(stop)
        per_call_body = extra.pop("extra_body", None)
        if per_call_body:
            payload.update(per_call_body)
        payload.update(extra)
        try:
            return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        except (TypeError, ValueError) as e:
            raise ClientError(
                f"the request body is not JSON-serialisable ({e}); pass images through build_messages()"
            ) from e

    def chat(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: str | Sequence[str] | None = None,
        timeout_s: float | None = None,
        deadline_s: float | None = None,
        **extra: Any,
    ) -> ChatResponse:
        """Send one chat completion request (with retries) and return the first choice.

        Args:
            messages: OpenAI chat messages, e.g. from :func:`build_messages`.
            max_tokens: overrides :attr:`ClientConfig.max_tokens`.
            temperature: overrides :attr:`ClientConfig.temperature`.
            stop: stop string(s).
            timeout_s: per-attempt timeout, overrides :attr:`ClientConfig.timeout_s`.
            deadline_s: budget of the whole call incl. retries, overrides :attr:`ClientConfig.deadline_s`.
            **extra: more request fields (``response_format``, ``seed``, ``model``, ...); an ``extra_body`` dict
                is merged into the body like in the ``openai`` package. Precedence: config ``extra_body`` <
                ``extra_body`` < other keywords.

        Returns:
            The parsed :class:`ChatResponse`.

        Raises:
            ServerError: a non-retryable HTTP error (4xx other than 408/429), or 5xx/429 after all retries.
            ClientError: connection errors, timeouts or malformed responses after all retries, a closed client,
                or a body that is not JSON-serialisable.
        """
        t0 = time.perf_counter()
        body = self._payload(messages, max_tokens, temperature, stop, dict(extra))
        (text, finish, reasoning, data), attempts = self._request(
            "POST",
            self.chat_url,
            body,
            lambda d: (*_parse_chat(d), d),
            timeout_s,
            deadline_s,
        )
        usage = data.get("usage")
        return ChatResponse(
            text=text,
            finish_reason=finish,
            latency_s=time.perf_counter() - t0,
            usage=usage if isinstance(usage, dict) else {},
            raw=data,
            reasoning=reasoning,
            attempts=attempts,
        )

    def chat_many(
        self,
        batch: Sequence[Sequence[Message]],
        *,
        on_result: Callable[[int, ChatResponse | ClientError], None] | None = None,
        **kw: Any,
    ) -> list[ChatResponse | ClientError]:
        """Run many chats on a thread pool of ``config.concurrency`` workers; results keep the input order.

        An individual failure never raises: its :class:`ClientError` (or :class:`ServerError`) takes its slot;
        unexpected exceptions are wrapped in a ``ClientError`` whose ``__cause__`` is the original.

        Args:
            batch: one message list per request.
            on_result: optional ``callback(index, result)`` called in the calling thread as each request
                finishes (completion order), e.g. to update a progress bar or append to a results file. An
                exception it raises cancels the requests not yet started and propagates.
            **kw: keyword arguments of :meth:`chat`, applied to every request.

        Returns:
            ``results[i]`` is the :class:`ChatResponse` or the error of ``batch[i]``.
        """
        n = len(batch)
        if n == 0:
            return []
        results: list[ChatResponse | ClientError | None] = [None] * n

        def one(i: int) -> ChatResponse | ClientError:
            try:
                return self.chat(batch[i], **kw)
            except ClientError as e:
                return e
            except Exception as e:
                err = ClientError(f"request {i} of the batch failed: {type(e).__name__}: {e}")
                err.__cause__ = e
                return err

        pool = ThreadPoolExecutor(max_workers=min(self.config.concurrency, n), thread_name_prefix="dppo-chat")
        try:
            futures = {pool.submit(one, i): i for i in range(n)}
            for fut in as_completed(futures):
                i = futures[fut]
                results[i] = fut.result()
                if on_result is not None:
                    on_result(i, results[i])  # type: ignore[arg-type]
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        return results  # type: ignore[return-value]

    def list_models(self, timeout_s: float | None = None) -> list[str]:
        """The model ids the server serves (``GET {base_url}/models``), with retries.

        Args:
            timeout_s: per-attempt timeout (default: the config's).

        Returns:
            The ids, e.g. ``["Qwen/Qwen2.5-VL-7B-Instruct"]``.

        Raises:
            ClientError: the server cannot be reached or answers badly (see :meth:`chat`).
        """

        def parse(data: Any) -> list[str]:
            items = data.get("data") if isinstance(data, dict) else None
            if not isinstance(items, list):
                raise _Retryable("malformed /models response: no 'data' list", "bad_response")
            return [m["id"] for m in items if isinstance(m, dict) and isinstance(m.get("id"), str)]

        models, _ = self._request("GET", f"{self.config.base_url}/models", None, parse, timeout_s, None)
        return models

    def health(self, timeout_s: float | None = None) -> bool:
        """Whether the server is up: ``GET {api_root}/health`` is 200, or (when that route does not exist)
        ``GET {base_url}/models`` is 200. One attempt each, no retry; never raises.

        Args:
            timeout_s: timeout of each probe (default: ``min(timeout_s, 5)`` of the config).

        Returns:
            ``True`` when healthy.
        """
        if self._closed:
            return False
        t = timeout_s if timeout_s is not None else min(self.config.timeout_s, 5.0)
        timeout = httpx.Timeout(t, connect=min(self.config.connect_timeout_s, t))
        try:
            r = self._http.get(f"{self.config.api_root}/health", timeout=timeout)
            if r.status_code == 200:
                return True
            if r.status_code not in (404, 405):
                logger.debug("health: %s/health -> %d", self.config.api_root, r.status_code)
                return False
            return self._http.get(f"{self.config.base_url}/models", timeout=timeout).status_code == 200
        except (httpx.HTTPError, RuntimeError) as e:
            logger.debug("health: %s unreachable: %s", self.config.api_root, e)
            return False
