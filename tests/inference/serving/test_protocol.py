"""OpenAI chat request validation and response bodies of ``dppo serve`` (no model needed)."""

from __future__ import annotations

import numpy as np
import pytest

from dppo_embodied.client import build_messages
from dppo_embodied.images import to_data_url
from inference.serving.protocol import (
    Completion,
    Limits,
    RequestError,
    apply_stop,
    completion_body,
    decode_image_url,
    parse_chat_request,
    stream_chunks,
)

IMG = np.zeros((20, 30, 3), dtype=np.uint8)


def body(**kw: object) -> dict[str, object]:
    return {"model": "m", "messages": build_messages("hi", images=[IMG], system="sys"), **kw}


def test_parse_text_image_system() -> None:
    p = parse_chat_request(body(max_tokens=12, temperature=0.5, stop="END", n=2), "m", Limits())
    conv = p.request.conversation.chat_messages()
    assert conv[0] == {"role": "system", "content": [{"type": "text", "text": "sys"}]}
    assert conv[1]["content"] == [{"type": "text", "text": "hi"}, {"type": "image"}] and len(conv) == 2
    images = p.request.conversation.images
    assert len(images) == 1 and images[0].size == (30, 20)
    assert p.params.max_tokens == 12 and p.params.temperature == 0.5 and p.params.stop == ("END",)
    assert p.params.n == 2 and not p.stream


def test_multi_turn_and_defaults() -> None:
    msgs = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
            {"role": "user", "content": [{"type": "text", "text": "c"}]}]
    p = parse_chat_request({"messages": msgs}, "m", Limits(default_max_tokens=7))
    conv = p.request.conversation.chat_messages()
    assert [m["role"] for m in conv] == ["user", "assistant", "user"]
    assert conv[-1]["content"] == [{"type": "text", "text": "c"}]
    assert p.params.max_tokens == 7 and p.params.temperature == 0.0
    assert parse_chat_request({"messages": msgs, "max_completion_tokens": 3}, "m", Limits()).params.max_tokens == 3
    assert p.request.seed is None
    assert parse_chat_request({"messages": msgs, "seed": -5}, "m", Limits()).request.seed == -5


@pytest.mark.parametrize(("b", "status", "match"), [
    ([], 400, "JSON object"),
    ({"messages": []}, 400, "non-empty"),
    (body(model="other"), 404, "not served"),
    ({"messages": [{"role": "tool", "content": "x"}]}, 400, "role"),
    ({"messages": [{"role": "assistant", "content": "x"}]}, 400, "last message"),
    (body(max_tokens=0), 400, "max_tokens"),
    (body(max_tokens=10**9), 400, "max_tokens"),
    (body(temperature=-1), 400, "temperature"),
    (body(temperature=float("nan")), 400, "temperature"),
    (body(n=100), 400, "n must"),
    (body(stop=[1, 2]), 400, "stop"),
    (body(stream="yes"), 400, "stream"),
    (body(seed="7"), 400, "seed must"),
    (body(seed=1.5), 400, "seed must"),
    (body(seed=True), 400, "seed must"),
    (body(seed=2**64), 400, "seed must"),
    ({"messages": [{"role": "user", "content": [{"type": "audio", "audio": "x"}]}]}, 400, "not supported"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url",
                                                  "image_url": {"url": "http://evil/x.png"}}]}]}, 400, "fetch"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url",
                                                  "image_url": {"url": "file:///etc/passwd"}}]}]}, 400, "fetch"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url",
                                                  "image_url": {"url": "data:image/png;base64,!!!"}}]}]}, 400,
     "base64"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url",
                                                  "image_url": {"url": "data:image/png;base64,aGVsbG8="}}]}]}, 400,
     "does not decode"),
])
def test_invalid_requests(b: object, status: int, match: str) -> None:
    with pytest.raises(RequestError, match=match) as e:
        parse_chat_request(b, "m", Limits())
    assert e.value.status == status and e.value.body()["error"]["message"]


def test_image_limits() -> None:
    url = to_data_url(np.zeros((100, 100, 3), dtype=np.uint8))
    with pytest.raises(RequestError) as e:
        decode_image_url(url, Limits(max_image_pixels=50 * 50))
    assert e.value.status == 413
    many = build_messages("x", images=[IMG] * 3)
    with pytest.raises(RequestError, match="too many images"):
        parse_chat_request({"messages": many}, "m", Limits(max_images=2))


def test_stop_and_bodies() -> None:
    assert apply_stop("abc END def", ("END", "d")) == ("abc ", True)
    assert apply_stop("abc", ("x",)) == ("abc", False)
    out = completion_body("m", [Completion("hi", "stop", 1), Completion("yo", "length", 4)], prompt_tokens=10)
    assert out["usage"] == {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    assert out["choices"][1]["message"] == {"role": "assistant", "content": "yo"}
    chunks = stream_chunks(out)
    assert len(chunks) == 6 and chunks[1]["choices"][0]["delta"]["content"] == "hi"
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
