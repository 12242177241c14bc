"""OpenAI-compatible chat client (vLLM, ``dppo serve``, OpenAI) on the official ``openai`` SDK: batches, a deadline.

Used by the evaluation harness (openai backend), the teacher in training and the robot bridge, so it is
torch-free, thread-safe and predictable under a latency budget:

* one SDK client per :class:`ChatClient` on one keep-alive connection pool sized to ``concurrency``, safe to share
  between threads; loopback servers are never reached through an ``HTTP(S)_PROXY`` from the environment;
* retries, backoff, ``Retry-After`` and connection handling are the SDK's (``max_retries``; it retries connection
  errors, timeouts, HTTP 408/409/429 and 5xx; other 4xx fail at once with :class:`ServerError`);
* ``timeout_s`` bounds each attempt; ``deadline_s`` (optional, ours) is a hard wall-clock bound on a whole call,
  what a planner loop with a hard budget wants: such a call makes one attempt and gives up at the deadline;
* the body of an answer is decoded here (:mod:`dppo_embodied.client_response`): a reply that is not JSON, not
  UTF-8 or nested too deeply is a failed request, never a crash;
* every failure is a :class:`~dppo_embodied.errors.ClientError` whose message names the URL, the attempts and
  what to do.

Settings live in :mod:`dppo_embodied.client_config`, message building in :mod:`dppo_embodied.messages` and
response decoding with :class:`ChatResponse` in :mod:`dppo_embodied.client_response`; their public names are
re-exported here.

Example::

    cfg = ClientConfig(base_url="http://127.0.0.1:8000/v1", model="Qwen/Qwen2.5-VL-7B-Instruct")
    with ChatClient(cfg) as client:
        msgs = build_messages("Where is the red cube?", images=[frame], system=SYSTEM_PROMPT, max_side=448)
        reply = client.chat(msgs, max_tokens=128)
        print(reply.text)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, TypeVar
from urllib.parse import urlsplit

import openai

from dppo_embodied import __version__
from dppo_embodied.client_config import API_KEY_ENV_VARS as API_KEY_ENV_VARS
from dppo_embodied.client_config import ClientConfig
from dppo_embodied.client_response import (
    START_HINT,
    ChatResponse,
    bad_response,
    decode_json,
    parse_chat,
    parse_model_cards,
    status_error,
)
from dppo_embodied.errors import ClientError, ConfigError
from dppo_embodied.images import ImageLike as ImageLike
from dppo_embodied.images import to_data_url as to_data_url
from dppo_embodied.messages import Message
from dppo_embodied.messages import build_messages as build_messages
from dppo_embodied.messages import image_part as image_part

__all__ = ["API_KEY_ENV_VARS", "ChatClient", "ChatResponse", "ClientConfig", "ImageLike", "build_messages",
           "image_part", "to_data_url"]

logger = logging.getLogger(__name__)

_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_RETRIED_STATUSES = frozenset({408, 409, 429})
"""HTTP statuses the SDK retries besides every 5xx."""
NO_KEY = "EMPTY"
"""Sent as the bearer token when no API key is set (the SDK always sends one; a server without a key ignores it)."""
R = TypeVar("R")


# --------------------------------------------------------------------------------------------------- client


class ChatClient:
    """Thread-safe client of an OpenAI-compatible ``/v1/chat/completions`` server.

    Use as a context manager (or call :meth:`close`) so the connection pool is released.

    Args:
        config: the client settings.
        http_client: an optional ready HTTP client for the SDK (``openai.DefaultHttpxClient(...)``, e.g. with a
            mock transport in tests); by default one is made from the config.
    """

    def __init__(self, config: ClientConfig, *, http_client: Any = None) -> None:
        if not isinstance(config, ClientConfig):
            raise ConfigError(f"ChatClient needs a ClientConfig, got {type(config).__name__}")
        self.config = config
        self.chat_url = f"{config.base_url}/chat/completions"
        pool = config.concurrency + 2  # headroom so health()/list_models() never queue behind a full batch
        timeout = openai.Timeout(config.timeout_s, connect=config.connect_timeout_s)
        limits = type(openai.DEFAULT_CONNECTION_LIMITS)(max_connections=pool, max_keepalive_connections=pool,
                                                        keepalive_expiry=30.0)
        self._http = http_client or openai.DefaultHttpxClient(
            timeout=timeout, limits=limits, follow_redirects=False,
            # A proxy from the environment must never sit between us and a loopback server.
            trust_env=urlsplit(config.base_url).hostname not in _LOOPBACK_HOSTS,
        )
        self._sdk = openai.OpenAI(base_url=config.base_url, api_key=config.resolved_api_key() or NO_KEY,
                                  timeout=timeout, max_retries=config.max_retries, http_client=self._http,
                                  default_headers={"User-Agent": f"dppo-embodied/{__version__}"})
        self._sdk_once = self._sdk.with_options(max_retries=0)  # calls under a deadline: one attempt
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
                self._sdk.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def __repr__(self) -> str:
        return f"ChatClient(base_url={self.config.base_url!r}, model={self.config.model!r})"

    # ---------------------------------------------------------------------------------------- requests

    def _send(self, method: str, url: str, call: Callable[[Any, Any], R], timeout_s: float | None,
              deadline_s: float | None) -> tuple[R, int]:
        """Run ``call(sdk, timeout)`` (the SDK retries) or, with a deadline, one attempt bounded by it; returns
        ``(raw response, attempts)`` or raises ClientError/ServerError."""
        cfg = self.config
        if self._closed:
            raise ClientError(f"{method} {url}: the ChatClient is closed; create a new one")
        t = cfg.timeout_s if timeout_s is None else timeout_s
        deadline = cfg.deadline_s if deadline_s is None else deadline_s
        if deadline is not None:
            t = min(t, deadline)
        timeout = openai.Timeout(t, connect=min(cfg.connect_timeout_s, t))
        attempts = 1 if deadline is not None else cfg.max_retries + 1
        where = f"{method} {url}"
        try:
            if deadline is None:
                raw: Any = call(self._sdk, timeout)
            else:
                raw = _within(deadline, lambda: call(self._sdk_once, timeout), where)
        except openai.APITimeoutError as e:
            raise ClientError(
                f"{where} failed after {attempts} attempt(s): timed out after {t:.3g} s. The server is slow or "
                f"overloaded (or not running): raise timeout_s/deadline_s, lower max_tokens or concurrency, and "
                f"check the server log. {START_HINT}.") from e
        except openai.APIConnectionError as e:
            cause = e.__cause__ or e
            raise ClientError(f"{where} failed after {attempts} attempt(s): {type(cause).__name__}: "
                              f"{cause or 'connection failed'}. {START_HINT}.") from e
        except openai.APIStatusError as e:
            status = e.status_code
            retried = status >= 500 or status in _RETRIED_STATUSES
            raise status_error(status, e.response.text, where, attempts if retried else 1, retried, cfg.model,
                               cfg.base_url) from None
        except openai.OpenAIError as e:
            raise ClientError(f"{where} failed: {type(e).__name__}: {e}") from e
        except RuntimeError as e:  # the HTTP client was closed from another thread
            if self._closed:
                raise ClientError(f"{where}: the ChatClient was closed during the request") from e
            raise
        return raw, int(getattr(raw, "retries_taken", 0)) + 1

    def _body(self, messages: Sequence[Message], max_tokens: int | None, temperature: float | None,
              stop: str | Sequence[str] | None, extra: dict[str, Any]) -> dict[str, Any]:
        """The request fields besides ``model`` and ``messages``: config ``extra_body`` < call ``extra_body`` <
        other keywords."""
        if not isinstance(messages, (list, tuple)) or not messages:
            raise ClientError("chat() needs a non-empty list of messages; build one with build_messages()")
        cfg = self.config
        body: dict[str, Any] = dict(cfg.extra_body)
        mt = cfg.max_tokens if max_tokens is None else max_tokens
        if mt is not None:
            body["max_tokens"] = mt
        temp = cfg.temperature if temperature is None else temperature
        if temp is not None:
            body["temperature"] = temp
        if stop is not None:
            body["stop"] = [stop] if isinstance(stop, str) else list(stop)
        body.update(extra.pop("extra_body", None) or {})
        body.update(extra)
        return body

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
        """Send one chat completion request (the SDK retries) and return the first choice.

        Args:
            messages: OpenAI chat messages, e.g. from :func:`build_messages`.
            max_tokens: overrides :attr:`ClientConfig.max_tokens`.
            temperature: overrides :attr:`ClientConfig.temperature`.
            stop: stop string(s).
            timeout_s: per-attempt timeout, overrides :attr:`ClientConfig.timeout_s`.
            deadline_s: hard wall-clock bound of the whole call, overrides :attr:`ClientConfig.deadline_s`; a call
                with a deadline makes one attempt (no retry) and fails when the deadline passes.
            **extra: more request fields (``response_format``, ``seed``, ``model``, ...); an ``extra_body`` dict
                is merged into the body like in the ``openai`` package. Precedence: config ``extra_body`` <
                ``extra_body`` < other keywords.

        Returns:
            The parsed :class:`ChatResponse`.

        Raises:
            ServerError: a non-retried HTTP error (4xx other than 408/409/429), or 5xx/429 after all retries.
            ClientError: connection errors or timeouts after all retries, a missed deadline, a reply that is not a
                chat completion, a closed client, or a body that is not JSON-serialisable.
        """
        t0 = time.perf_counter()
        extra = dict(extra)
        model = str(extra.pop("model", self.config.model))
        body = self._body(messages, max_tokens, temperature, stop, extra)

        def call(sdk: Any, timeout: Any) -> Any:
            return sdk.chat.completions.with_raw_response.create(model=model, messages=list(messages),
                                                                 extra_body=body, timeout=timeout)

        try:
            raw, attempts = self._send("POST", self.chat_url, call, timeout_s, deadline_s)
        except TypeError as e:
            raise ClientError(f"the request body is not JSON-serialisable ({e}); pass images through "
                              "build_messages()") from e
        data = decode_json(raw.content, raw.status_code, self.chat_url, attempts)
        try:
            text, finish, reasoning = parse_chat(data)
        except ValueError as e:
            raise bad_response(str(e), self.chat_url, attempts) from None
        usage = data.get("usage")
        return ChatResponse(text=text, finish_reason=finish, latency_s=time.perf_counter() - t0,
                            usage=usage if isinstance(usage, dict) else {}, raw=data, reasoning=reasoning,
                            attempts=attempts)

    def chat_many(
        self,
        batch: Sequence[Sequence[Message]],
        *,
        on_result: Callable[[int, ChatResponse | ClientError], None] | None = None,
        per_request: Sequence[dict[str, Any]] | None = None,
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
            per_request: keyword arguments of :meth:`chat` for each request (e.g. its own ``seed``), one dict per
                request of ``batch``, over ``kw``.
            **kw: keyword arguments of :meth:`chat`, applied to every request.

        Returns:
            ``results[i]`` is the :class:`ChatResponse` or the error of ``batch[i]``.
        """
        n = len(batch)
        if n == 0:
            return []
        if per_request is not None and len(per_request) != n:
            raise ValueError(f"per_request has {len(per_request)} entries for a batch of {n}: give one per request")
        results: list[ChatResponse | ClientError | None] = [None] * n

        def one(i: int) -> ChatResponse | ClientError:
            try:
                return self.chat(batch[i], **{**kw, **(per_request[i] if per_request is not None else {})})
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
        """The model ids the server serves (``GET {base_url}/models``), with the SDK's retries.

        Args:
            timeout_s: per-attempt timeout (default: the config's).

        Returns:
            The ids, e.g. ``["Qwen/Qwen2.5-VL-7B-Instruct"]``.

        Raises:
            ClientError: the server cannot be reached or answers badly (see :meth:`chat`).
        """
        return [m["id"] for m in self.model_cards(timeout_s)]

    def model_cards(self, timeout_s: float | None = None) -> list[dict[str, Any]]:
        """The entries of ``GET {base_url}/models`` as the server sent them (``id`` and any extension, e.g.
        :data:`dppo_embodied.prompts.STEP_PROMPT_FIELD` from ``dppo serve``), with the SDK's retries.

        Raises:
            ClientError: the server cannot be reached or answers badly (see :meth:`chat`).
        """
        url = f"{self.config.base_url}/models"
        raw, attempts = self._send("GET", url, lambda sdk, timeout: sdk.models.with_raw_response.list(
            timeout=timeout), timeout_s, None)
        try:
            return parse_model_cards(decode_json(raw.content, raw.status_code, url, attempts))
        except ValueError as e:
            raise bad_response(str(e), url, attempts) from None

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
        timeout = openai.Timeout(t, connect=min(self.config.connect_timeout_s, t))
        try:
            r = self._http.get(f"{self.config.api_root}/health", timeout=timeout)
            if r.status_code == 200:
                return True
            if r.status_code not in (404, 405):
                logger.debug("health: %s/health -> %d", self.config.api_root, r.status_code)
                return False
            return bool(self._http.get(f"{self.config.base_url}/models", timeout=timeout).status_code == 200)
        except Exception as e:  # any transport failure (or a client closed meanwhile) means "not healthy"
            logger.debug("health: %s unreachable: %s", self.config.api_root, e)
            return False


def _within(deadline_s: float, fn: Callable[[], R], where: str) -> R:
    """``fn()`` on a worker thread, waited for at most ``deadline_s`` seconds (the hard bound of a planner's
    request: an attempt that is still running then is left to end by its own timeout, its answer dropped).

    Raises:
        ClientError: the deadline passed; what ``fn`` raised otherwise.
    """
    box: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # handed to the caller's thread
            box["error"] = e
        finally:
            done.set()

    threading.Thread(target=run, name="dppo-chat-deadline", daemon=True).start()
    if not done.wait(deadline_s):
        raise ClientError(f"{where} timed out: no complete answer within the {deadline_s:g} s deadline "
                          f"(1 attempt). The server is slow or overloaded: raise the deadline or lower max_tokens. "
                          f"{START_HINT}.")
    if "error" in box:
        raise box["error"]
    return box["value"]
