"""The OpenAI chat-completions wire format of ``dppo serve``: request validation and response bodies.

JSON only (no pickle anywhere). Images arrive as ``data:image/...;base64,...`` URLs inside ``image_url`` content
parts; remote ``http(s)`` URLs and local paths are refused (no server-side fetching: latency and SSRF), and each is
decoded within the pixel budgets of :mod:`inference.serving.images`. Every problem with a request becomes a
:class:`RequestError` carrying the HTTP status and an OpenAI-style error body whose message says how to fix the
request.

Work budgets: ``n * max_tokens`` is capped (``Limits.max_work_tokens``); the prompt (text and image tokens) plus
``max_tokens`` must fit the model's context (:func:`check_context`); every request has a deadline, the server's
default or the request's ``timeout_s`` (an extension field, at most ``Limits.max_timeout_s``).
"""

from __future__ import annotations

import base64
import binascii
import math
import time
import uuid
from dataclasses import dataclass
from typing import Any

from PIL import Image

from dppo_embodied.conversation import Conversation
from dppo_embodied.generation import ChatRequest, GenerationSettings
from dppo_embodied.prompts import STEP_PROMPT_FIELD
from inference.serving.images import ImageRefused, PixelBudget

ROLES = ("system", "user", "assistant")
"""Message roles accepted (``tool``/``function`` messages are refused: this server does not call tools)."""


class RequestError(Exception):
    """A client error: HTTP ``status`` and an OpenAI-style error body.

    Args:
        message: what is wrong and how to fix it.
        status: HTTP status (400 by default).
        param: the offending request field, if any.
        type_: OpenAI error type.
    """

    def __init__(self, message: str, status: int = 400, param: str | None = None,
                 type_: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.message, self.status, self.param, self.type = message, status, param, type_

    def body(self) -> dict[str, Any]:
        """The JSON error body ``{"error": {"message", "type", "param", "code"}}``."""
        return error_body(self.message, self.type, self.param, self.status)


def error_body(message: str, type_: str, param: str | None = None, code: int | str | None = None) -> dict[str, Any]:
    """An OpenAI-style error body."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


@dataclass(frozen=True)
class Limits:
    """What one request may ask for.

    Attributes:
        default_max_tokens: ``max_tokens`` when the request gives none.
        max_tokens_cap: the largest ``max_tokens`` accepted.
        max_images: images per request (all messages together).
        max_image_pixels: pixels per decoded image (width × height); larger images are refused (413).
        max_request_pixels: decoded pixels of all the images of a request together (413 above).
        keep_pixels: decoded images above this many pixels are downscaled to it (the processor's ``max_pixels``;
            ``None``: kept as sent).
        max_messages: messages per request.
        max_stop: stop strings per request.
        max_n: completions per request (``n``).
        max_work_tokens: the most ``n * max_tokens`` one request may ask for.
        default_timeout_s: a request's deadline (queueing and generation) when it sends no ``timeout_s``.
        max_timeout_s: the largest ``timeout_s`` accepted.
    """

    default_max_tokens: int = 256
    max_tokens_cap: int = 4096
    max_images: int = 8
    max_image_pixels: int = 4096 * 4096
    max_request_pixels: int = 4096 * 4096
    keep_pixels: int | None = None
    max_messages: int = 256
    max_stop: int = 8
    max_n: int = 8
    max_work_tokens: int = 8192
    default_timeout_s: float = 60.0
    max_timeout_s: float = 600.0


@dataclass
class ParsedChat:
    """A validated chat request.

    Attributes:
        request: the conversation (the client's turns as sent, decoded images) and its generation settings.
        model: the served model id.
        stream: answer as server-sent events.
        timeout_s: the request's time budget from arrival (queueing and generation).
        pixels: decoded pixels of its images (after downscaling), what it holds in memory while queued.
        text_chars: characters of text in the conversation (a cheap bound before tokenizing).
    """

    request: ChatRequest
    model: str
    stream: bool = False
    timeout_s: float = 60.0
    pixels: int = 0
    text_chars: int = 0

    @property
    def params(self) -> GenerationSettings:
        """The request's generation settings."""
        return self.request.settings


def _number(body: dict[str, Any], name: str, default: float, lo: float, hi: float) -> float:
    v = body.get(name, default)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
        raise RequestError(f"{name} must be a number in [{lo:g}, {hi:g}], got {v!r}", param=name)
    return float(v)


def _integer(body: dict[str, Any], name: str, default: int, lo: int, hi: int) -> int:
    v = body.get(name, default)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise RequestError(f"{name} must be an integer in [{lo}, {hi}], got {v!r}", param=name)
    return v


def _data_url_bytes(url: Any) -> bytes:
    """The encoded image of a ``data:image/...;base64,...`` URL (remote URLs and files are never fetched)."""
    if not isinstance(url, str):
        raise RequestError("image_url.url must be a string data URL", param="messages")
    if url.startswith(("http://", "https://", "file:", "/")):
        raise RequestError(
            "this server does not fetch image URLs or files; send the image inline as a base64 data URL "
            "('data:image/jpeg;base64,...', e.g. dppo_embodied.images.to_data_url(image))", param="messages")
    head, sep, payload = url.partition(",")
    if not sep or not head.startswith("data:image/") or not head.endswith(";base64"):
        raise RequestError(f"image_url.url must look like 'data:image/jpeg;base64,...', got {url[:40]!r}",
                           param="messages")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as e:
        raise RequestError(f"image data URL is not valid base64 ({e})", param="messages") from None


def _decode_images(raws: list[bytes], limits: Limits) -> list[Image.Image]:
    try:
        return pixel_budget(limits).decode_all(raws)
    except ImageRefused as e:
        raise RequestError(str(e), status=e.status, param="messages") from None


def decode_image_url(url: Any, limits: Limits) -> Image.Image:
    """Decode a ``data:image/...;base64,...`` URL into an RGB PIL image within the pixel budgets.

    Raises:
        RequestError: not a data URL (remote URLs are never fetched), bad base64, not an image, too large (413).
    """
    return _decode_images([_data_url_bytes(url)], limits)[0]


def pixel_budget(limits: Limits) -> PixelBudget:
    """A fresh per-request pixel budget from ``limits``."""
    return PixelBudget(max_image_pixels=limits.max_image_pixels, max_request_pixels=limits.max_request_pixels,
                       keep_pixels=limits.keep_pixels)


def _content_parts(content: Any, where: str, limits: Limits, images: list[bytes]) -> list[dict[str, Any]]:
    """OpenAI content (string or parts) → template parts; encoded images appended to ``images``."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if content is None:
        return []
    if not isinstance(content, list):
        raise RequestError(f"{where}.content must be a string or a list of content parts", param="messages")
    parts: list[dict[str, Any]] = []
    for i, part in enumerate(content):
        if not isinstance(part, dict):
            raise RequestError(f"{where}.content[{i}] must be an object", param="messages")
        kind = part.get("type")
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise RequestError(f"{where}.content[{i}].text must be a string", param="messages")
            parts.append({"type": "text", "text": text})
        elif kind == "image_url":
            ref = part.get("image_url")
            url = ref.get("url") if isinstance(ref, dict) else ref
            if len(images) >= limits.max_images:
                raise RequestError(f"too many images: at most {limits.max_images} per request", param="messages")
            images.append(_data_url_bytes(url))
            parts.append({"type": "image"})
        else:
            raise RequestError(
                f"{where}.content[{i}].type {kind!r} is not supported; use 'text' or 'image_url' (data URL)",
                param="messages")
    return parts


def parse_chat_request(body: Any, served_model: str, limits: Limits) -> ParsedChat:
    """Validate an OpenAI ``/v1/chat/completions`` body.

    Args:
        body: the decoded JSON body.
        served_model: the model id this server serves (``model`` must match it, or be omitted).
        limits: request limits.

    Returns:
        The request for the policy and its generation settings.

    Raises:
        RequestError: the body is invalid (the message names the field and the fix).
    """
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    model = body.get("model", served_model)
    if model is None:
        model = served_model
    if model != served_model:
        raise RequestError(f"model {model!r} is not served here; this server serves {served_model!r} "
                           "(GET /v1/models)", status=404, param="model", type_="not_found_error")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("messages must be a non-empty list of {role, content} objects", param="messages")
    if len(messages) > limits.max_messages:
        raise RequestError(f"too many messages: at most {limits.max_messages}", param="messages")
    raws: list[bytes] = []
    conversation: list[dict[str, Any]] = []
    system_texts: list[str] = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise RequestError(f"messages[{i}] must be an object", param="messages")
        role = msg.get("role")
        if role not in ROLES:
            raise RequestError(f"messages[{i}].role {role!r} is not supported; use one of {list(ROLES)}",
                               param="messages")
        parts = _content_parts(msg.get("content"), f"messages[{i}]", limits, raws)
        if role == "system":
            if any(p["type"] != "text" for p in parts):
                raise RequestError(f"messages[{i}]: a system message holds text only", param="messages")
            system_texts.append("".join(p["text"] for p in parts))
            continue
        conversation.append({"role": role, "content": parts})
    if not conversation or conversation[-1]["role"] != "user":
        raise RequestError("the last message must come from the user", param="messages")
    system = "\n\n".join(system_texts) if system_texts else None

    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    mt = _integer({"max_tokens": max_tokens}, "max_tokens", limits.default_max_tokens, 1, limits.max_tokens_cap)
    stop_raw = body.get("stop")
    if stop_raw is None:
        stop: tuple[str, ...] = ()
    elif isinstance(stop_raw, str):
        stop = (stop_raw,) if stop_raw else ()
    elif isinstance(stop_raw, list) and all(isinstance(s, str) for s in stop_raw):
        stop = tuple(s for s in stop_raw if s)
    else:
        raise RequestError("stop must be a string or a list of strings", param="stop")
    if len(stop) > limits.max_stop:
        raise RequestError(f"too many stop strings: at most {limits.max_stop}", param="stop")
    params = GenerationSettings(
        max_tokens=mt,
        temperature=_number(body, "temperature", 0.0, 0.0, 2.0),
        top_p=_number(body, "top_p", 1.0, 1e-6, 1.0),
        stop=stop,
        n=_integer(body, "n", 1, 1, limits.max_n),
    )
    if params.n * params.max_tokens > limits.max_work_tokens:
        raise RequestError(f"n * max_tokens = {params.n} * {params.max_tokens} = {params.n * params.max_tokens} "
                           f"exceeds this server's limit of {limits.max_work_tokens} tokens per request; lower n "
                           "or max_tokens (or send several requests)", param="max_tokens")
    seed = _integer(body, "seed", 0, -2**63, 2**64 - 1) if body.get("seed") is not None else None
    timeout_s = _number(body, "timeout_s", limits.default_timeout_s, 1e-3, limits.max_timeout_s)
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise RequestError("stream must be true or false", param="stream")
    chars = len(system or "") + sum(len(p.get("text", "")) for m in conversation for p in m["content"])
    images = _decode_images(raws, limits)  # last: a request that is invalid otherwise costs no decoding
    request = ChatRequest(Conversation("", tuple(images), system, history=tuple(conversation)), params, seed=seed)
    return ParsedChat(request=request, model=served_model, stream=stream, timeout_s=timeout_s,
                      pixels=sum(im.width * im.height for im in images), text_chars=chars)


@dataclass
class Completion:
    """One generated choice: the text (stop string removed), why it ended, and its token count.

    ``deadline_hit`` marks a choice cut by the request's deadline (its ``finish_reason`` is then ``"length"``).
    """

    text: str
    finish_reason: str
    completion_tokens: int
    deadline_hit: bool = False


def apply_stop(text: str, stop: tuple[str, ...]) -> tuple[str, bool]:
    """Cut ``text`` at the first stop string (OpenAI semantics: the stop string is not returned)."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def completion_body(model: str, choices: list[Completion], prompt_tokens: int) -> dict[str, Any]:
    """The JSON body of a non-streamed chat completion."""
    completion_tokens = sum(c.completion_tokens for c in choices)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": i, "message": {"role": "assistant", "content": c.text}, "finish_reason": c.finish_reason,
             "logprobs": None}
            for i, c in enumerate(choices)
        ],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


def stream_chunks(body: dict[str, Any]) -> list[dict[str, Any]]:
    """A finished completion as ``chat.completion.chunk`` events (role, content, finish), for ``stream: true``.

    Generation is not incremental here; streaming exists so that OpenAI clients that always stream still work.
    """
    base = {"id": body["id"], "object": "chat.completion.chunk", "created": body["created"], "model": body["model"]}
    chunks = []
    for ch in body["choices"]:
        i = ch["index"]
        chunks.append({**base, "choices": [{"index": i, "delta": {"role": "assistant", "content": ""},
                                            "finish_reason": None}]})
        chunks.append({**base, "choices": [{"index": i, "delta": {"content": ch["message"]["content"]},
                                            "finish_reason": None}]})
        chunks.append({**base, "choices": [{"index": i, "delta": {}, "finish_reason": ch["finish_reason"]}]})
    return chunks


def models_body(model: str, created: int, step_prompt: str | None = None) -> dict[str, Any]:
    """The JSON body of ``GET /v1/models``; with ``step_prompt``, the entry also carries the checkpoint's step prompt
    style as :data:`dppo_embodied.prompts.STEP_PROMPT_FIELD` (``dppo bridge`` checks it against its own)."""
    card: dict[str, Any] = {"id": model, "object": "model", "created": created, "owned_by": "dppo"}
    if step_prompt is not None:
        card[STEP_PROMPT_FIELD] = step_prompt
    return {"object": "list", "data": [card]}
