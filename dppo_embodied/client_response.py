"""Decoding a chat completion and naming what went wrong, for :class:`~dppo_embodied.client.ChatClient`.

Retries, ``Retry-After`` and connections are the ``openai`` SDK's; this module keeps what the SDK does not decide
for us: the body of a 2xx answer is decoded here with :mod:`json` (a reply that is not JSON, not UTF-8 or nested
too deeply for the decoder is a failed request, :class:`~dppo_embodied.errors.ClientError`, never another
exception), and every failure becomes a ``ClientError`` / ``ServerError`` whose message names the URL, the attempts
and what to do. Torch-free; re-exported by :mod:`dppo_embodied.client`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from dppo_embodied.errors import ClientError, ServerError

__all__ = ["START_HINT", "ChatResponse", "bad_response", "decode_json", "parse_chat", "parse_models",
           "status_error"]

START_HINT = (
    "Is the server running? Start one with `dppo serve ...` or `vllm serve <model> ...`, "
    "and check base_url (host, port, trailing /v1)"
)


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


def snippet(text: str, n: int = 300) -> str:
    """``text`` on one line, cut to ``n`` characters."""
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= n else text[:n] + "..."


def bad_response(what: str, url: str, attempts: int) -> ClientError:
    """The error of a 2xx answer that is not an OpenAI chat completion."""
    return ClientError(
        f"{url} failed after {attempts} attempt(s): {what}. The server at this URL does not answer like an OpenAI "
        "chat API: check that base_url points at the model server's /v1 root and look at its log."
    )


def decode_json(content: bytes, status: int, url: str, attempts: int) -> Any:
    """The JSON of a 2xx body; one that cannot be decoded (not JSON, not UTF-8, or nested too deeply for the
    decoder: ``RecursionError``) is a :class:`ClientError`, never an exception of another type."""
    try:
        return json.loads(content)
    except (ValueError, RecursionError) as e:
        why = "nested too deeply" if isinstance(e, RecursionError) else "malformed JSON"
        text = content[:240].decode("utf-8", errors="replace")
        raise bad_response(f"{why} in a {status} response ({len(content)} bytes): {snippet(text, 120)!r}", url,
                           attempts) from None


def _dumps(obj: Any) -> str:
    try:
        return json.dumps(obj)
    except (TypeError, ValueError, RecursionError):
        return f"(unprintable {type(obj).__name__})"


def _content_text(content: Any) -> str | None:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # some servers return content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return None


def parse_chat(data: Any) -> tuple[str, str | None, str | None]:
    """``(text, finish_reason, reasoning)`` of the first choice of a chat completion.

    Raises:
        ValueError: the JSON is not a chat completion (the message says which part is missing).
    """
    if not isinstance(data, dict):
        raise ValueError(f"malformed response: expected a JSON object, got {type(data).__name__}")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        err = data.get("error")
        detail = f" (server error: {snippet(_dumps(err))})" if err else f" (keys: {sorted(data)[:8]})"
        raise ValueError(f"malformed response: no choices{detail}")
    msg = choices[0].get("message")
    if not isinstance(msg, dict):
        raise ValueError("malformed response: choices[0] has no message object")
    text = _content_text(msg.get("content"))
    if text is None:
        raise ValueError(f"malformed response: message.content is {type(msg.get('content')).__name__}")
    reasoning = msg.get("reasoning_content") or msg.get("reasoning")
    finish = choices[0].get("finish_reason")
    return text, finish if isinstance(finish, str) else None, reasoning if isinstance(reasoning, str) else None


def parse_models(data: Any) -> list[str]:
    """The model ids of a ``GET /models`` answer.

    Raises:
        ValueError: no ``data`` list.
    """
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ValueError("malformed /models response: no 'data' list")
    return [m["id"] for m in items if isinstance(m, dict) and isinstance(m.get("id"), str)]


def _status_hint(status: int, model: str, base_url: str) -> str:
    if status in (401, 403):
        return ("check the API key: set DPPO_API_KEY (or OPENAI_API_KEY, or ClientConfig.api_key) to the server's "
                "--api-key")
    if status == 404:
        return (f"check base_url (it should end with /v1, e.g. http://127.0.0.1:8000/v1) and that model {model!r} "
                f"is served (GET {base_url}/models lists them)")
    if status == 413:
        return "the request is too large: send fewer or smaller images (max_side, image_quality)"
    if status in (400, 422):
        return ("the server rejected the request: check max_tokens against its --max-model-len, the image count "
                "against --limit-mm-per-prompt and the extra_body keys (vLLM >= 0.12 uses structured_outputs, "
                "not guided_*)")
    return "see the response body above"


def status_error(status: int, body: str, url: str, attempts: int, retried: bool, model: str,
                 base_url: str) -> ServerError:
    """The error of an HTTP error status: after the retries (5xx, 408, 409, 429) or at once (other 4xx)."""
    if retried:
        err = ServerError(f"{url} failed after {attempts} attempt(s): HTTP {status}: {snippet(body) or '(empty)'}. "
                          "The server keeps failing: check its log (still loading the model? out of memory? "
                          "overloaded: lower concurrency).")
    else:
        err = ServerError(f"{url} returned HTTP {status}: {snippet(body) or '(empty body)'}; "
                          f"{_status_hint(status, model, base_url)}")
    err.status = status  # type: ignore[attr-defined]
    return err
