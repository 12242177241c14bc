"""Retry policy and response decoding of :class:`~dppo_embodied.client.ChatClient`.

Which HTTP statuses are retried, how ``Retry-After`` is read, how a chat completion body is decoded (a malformed
one is a retryable failure) into a :class:`ChatResponse`, the hint that goes with a non-retryable status and the
error raised when the retries run out. Torch-free.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from dataclasses import dataclass
from typing import Any

import httpx

from dppo_embodied.client_config import ClientConfig
from dppo_embodied.errors import ClientError, ServerError

__all__ = ["MAX_RETRY_AFTER_S", "RETRY_STATUSES"]

RETRY_STATUSES = frozenset({408, 429})
"""HTTP statuses retried besides every 5xx."""

MAX_RETRY_AFTER_S = 60.0
"""A server's ``Retry-After`` is honoured up to this many seconds."""


class _Retryable(Exception):
    """One failed attempt that may succeed if repeated."""

    def __init__(self, message: str, kind: str, retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.kind, self.retry_after, self.status = kind, retry_after, status


def _decode_json(resp: httpx.Response) -> Any:
    """The JSON of a 2xx response body; a body that cannot be decoded (not JSON, not UTF-8, or nested too deeply
    for the decoder: ``RecursionError``) is a retryable ``bad_response``, never an exception of another type."""
    try:
        return json.loads(resp.content)
    except (ValueError, RecursionError) as e:
        why = "nested too deeply" if isinstance(e, RecursionError) else "malformed JSON"
        raise _Retryable(
            f"{why} in a {resp.status_code} response ({len(resp.content)} bytes): {_snippet(resp.text, 120)!r}",
            "bad_response",
        ) from None


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # some servers return content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    raise _Retryable(f"malformed response: message.content is {type(content).__name__}", "bad_response")


def _parse_chat(data: Any) -> tuple[str, str | None, str | None]:
    if not isinstance(data, dict):
        raise _Retryable(f"malformed response: expected a JSON object, got {type(data).__name__}", "bad_response")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        err = data.get("error")
        detail = f" (server error: {_snippet(_dumps(err))})" if err else f" (keys: {sorted(data)[:8]})"
        raise _Retryable(f"malformed response: no choices{detail}", "bad_response")
    msg = choices[0].get("message")
    if not isinstance(msg, dict):
        raise _Retryable("malformed response: choices[0] has no message object", "bad_response")
    reasoning = msg.get("reasoning_content") or msg.get("reasoning")
    finish = choices[0].get("finish_reason")
    return (
        _content_text(msg.get("content")),
        finish if isinstance(finish, str) else None,
        reasoning if isinstance(reasoning, str) else None,
    )


def _dumps(obj: Any) -> str:
    try:
        return json.dumps(obj)
    except (TypeError, ValueError, RecursionError):
        return f"(unprintable {type(obj).__name__})"


def _snippet(text: str, n: int = 300) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= n else text[:n] + "..."


def _retry_after(resp: httpx.Response) -> float | None:
    """Seconds asked by ``Retry-After-Ms`` / ``Retry-After`` (number or HTTP date), or ``None``."""
    ms = resp.headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = resp.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _status_hint(status: int, config: ClientConfig) -> str:
    if status in (401, 403):
        return (
            "check the API key: set DPPO_API_KEY (or OPENAI_API_KEY, or ClientConfig.api_key) to the server's "
            "--api-key"
        )
    if status == 404:
        return (
            f"check base_url (it should end with /v1, e.g. http://127.0.0.1:8000/v1) and that model "
            f"{config.model!r} is served (GET {config.base_url}/models lists them)"
        )
    if status == 413:
        return "the request is too large: send fewer or smaller images (max_side, image_quality)"
    if status in (400, 422):
        return (
            "the server rejected the request: check max_tokens against its --max-model-len, the image count "
            "against --limit-mm-per-prompt and the extra_body keys (vLLM >= 0.12 uses structured_outputs, "
            "not guided_*)"
        )
    return "see the response body above"


_START_HINT = (
    "Is the server running? Start one with `dppo serve ...` or `vllm serve <model> ...`, "
    "and check base_url (host, port, trailing /v1)"
)


def give_up(method: str, url: str, last: _Retryable | None, attempts: int, deadline_s: float | None) -> ClientError:
    """The error of a request whose retries ran out (or whose deadline ended them), saying what to do."""
    budget = f" within the {deadline_s:g} s deadline" if deadline_s is not None else ""
    what = f"{method} {url} failed after {attempts} attempt(s){budget}: {last or 'no attempt made'}"
    kind = last.kind if last else "timeout"
    if kind == "connect":
        return ClientError(f"{what}. {_START_HINT}.")
    if kind == "timeout":
        return ClientError(
            f"{what}. The server is slow or overloaded (or not running): raise timeout_s/deadline_s, lower "
            f"max_tokens or concurrency, and check the server log. {_START_HINT}."
        )
    if kind == "bad_response":
        return ClientError(
            f"{what}. The server at this URL does not answer like an OpenAI chat API: check that base_url "
            "points at the model server's /v1 root and look at its log."
        )
    err = ServerError(
        f"{what}. The server keeps failing: check its log (still loading the model? out of memory? "
        "overloaded: lower concurrency)."
    )
    err.status = last.status if last else None  # type: ignore[attr-defined]
    return err


@dataclass
class ChatResponse:
    """A successful chat completion.

    Attributes:
        text: the assistant text of the first choice (``""`` when the server returned ``content: null``, e.g. a
            thinking model that spent its budget; check :attr:`finish_reason`).
        finish_reason: ``"stop"``, ``"length"``, ... or ``None``.
        latency_s: wall-clock seconds of the whole :meth:`ChatClient.chat` call, retries included.
        usage: the server's token usage (``{}`` when absent).
        raw: the full response JSON.
        reasoning: ``reasoning_content`` / ``reasoning`` of reasoning models, else ``None``.
        attempts: how many HTTP attempts it took (1 = no retry).
    """

    text: str
    finish_reason: str | None
    latency_s: float
    usage: dict[str, Any]
    raw: dict[str, Any]
    reasoning: str | None = None
    attempts: int = 1
