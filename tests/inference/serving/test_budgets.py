"""Request budgets of ``dppo serve`` without a model: pixels (per image, per request, downscaling, formats), work
(``n * max_tokens``), context length, deadlines, and the per-row deadline stopping criterion."""

from __future__ import annotations

import base64
import io
import math
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from dppo_embodied.client import build_messages
from inference.serving.backend import check_context
from inference.serving.images import PixelBudget
from inference.serving.protocol import Limits, RequestError, decode_image_url, parse_chat_request


def png_header_only(w: int, h: int) -> bytes:
    """A PNG whose header claims ``w x h`` pixels but whose data is a few bytes (decoding it would fail)."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def encoded(w: int, h: int, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)).save(buf, format=fmt)
    return buf.getvalue()


def data_url(raw: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(raw).decode()


def image_body(*urls: str, **kw: object) -> dict[str, object]:
    parts = [{"type": "image_url", "image_url": {"url": u}} for u in urls] + [{"type": "text", "text": "hi"}]
    return {"messages": [{"role": "user", "content": parts}], **kw}


@pytest.mark.parametrize("side", [5000, 30000])  # over our per-image cap; over Pillow's own bomb limit
def test_oversized_image_refused_from_the_header(side: int) -> None:
    # the data would not decode: a 413 (not a 400 "does not decode") shows it was refused before decoding
    with pytest.raises(RequestError) as e:
        decode_image_url(data_url(png_header_only(side, side)), Limits())
    assert e.value.status == 413 and ("pixels" in e.value.message or "bomb" in e.value.message)


def test_request_pixel_budget_counts_all_images() -> None:
    url = data_url(encoded(100, 100))
    limits = Limits(max_request_pixels=2 * 100 * 100)
    assert len(parse_chat_request(image_body(url, url), "m", limits).request.conversation.images) == 2
    with pytest.raises(RequestError, match="per request") as e:
        parse_chat_request(image_body(url, url, url), "m", limits)
    assert e.value.status == 413


@pytest.mark.parametrize("fmt,mime", [("PNG", "image/png"), ("JPEG", "image/jpeg")])
def test_decoded_images_are_downscaled_to_keep_pixels(fmt: str, mime: str) -> None:
    parsed = parse_chat_request(image_body(data_url(encoded(400, 200, fmt), mime)), "m", Limits(keep_pixels=5000))
    (im,) = parsed.request.conversation.images
    assert im.mode == "RGB" and im.width * im.height <= 5000 and im.width == pytest.approx(2 * im.height, abs=2)
    assert parsed.pixels == im.width * im.height
    small = parse_chat_request(image_body(data_url(encoded(40, 20))), "m", Limits(keep_pixels=5000))
    assert small.request.conversation.images[0].size == (40, 20)  # under the budget: untouched


def test_only_allowed_formats_are_decoded() -> None:
    with pytest.raises(RequestError, match="does not decode") as e:
        decode_image_url(data_url(encoded(20, 20, "TIFF"), "image/tiff"), Limits())
    assert e.value.status == 400
    budget = PixelBudget(max_image_pixels=10**6, max_request_pixels=10**6)
    for fmt in ("PNG", "JPEG", "WEBP", "GIF", "BMP"):
        assert budget.decode(encoded(20, 10, fmt)).size == (20, 10)


def test_work_cap_and_timeout_field() -> None:
    msgs = build_messages("hi")
    with pytest.raises(RequestError, match=r"n \* max_tokens = 8 \* 4096 = 32768 exceeds .* 8192"):
        parse_chat_request({"messages": msgs, "n": 8, "max_tokens": 4096}, "m", Limits())
    assert parse_chat_request({"messages": msgs, "n": 2, "max_tokens": 4096}, "m", Limits()).params.n == 2
    assert parse_chat_request({"messages": msgs}, "m", Limits(default_timeout_s=7)).timeout_s == 7
    assert parse_chat_request({"messages": msgs, "timeout_s": 2.5}, "m", Limits()).timeout_s == 2.5
    for bad in (10**6, 0, -1, "5", float("inf")):
        with pytest.raises(RequestError, match="timeout_s"):
            parse_chat_request({"messages": msgs, "timeout_s": bad}, "m", Limits(max_timeout_s=600))


def test_check_context() -> None:
    check_context(100, 10, prompt_tokens=90)
    check_context(None, 10, prompt_tokens=10**9)  # unknown context: no check
    with pytest.raises(RequestError, match="at most 90 tokens") as e:
        check_context(100, 10, prompt_tokens=91)
    assert e.value.status == 400 and "100 tokens" in e.value.message
    with pytest.raises(RequestError, match="characters"):
        check_context(100, 10, text_chars=90 * 32 + 1)  # refused before tokenizing
    check_context(100, 10, text_chars=90 * 32)
    with pytest.raises(RequestError, match="no room"):
        check_context(100, 100, prompt_tokens=0)


def test_deadline_stop_cuts_rows_separately() -> None:
    import torch

    from inference.serving.deadlines import DeadlineStop

    now = [0.0]
    stop = DeadlineStop([1.0, 2.0, math.inf], finish_ids=[0, 9], clock=lambda: now[0])
    ids = torch.tensor([[5, 6], [5, 7], [5, 8]])
    assert stop(ids, None).tolist() == [False, False, False]
    now[0] = 1.5
    ended = torch.tensor([[5, 6, 7], [5, 7, 9], [5, 8, 1]])  # row 1 just ended by itself (EOS 9)
    assert stop(ended, None).tolist() == [True, False, False]
    now[0] = 3.0
    assert stop(torch.tensor([[5, 6, 7, 0], [5, 7, 9, 0], [5, 8, 1, 2]]), None).tolist() == [True, True, False]
    assert stop.cut == [True, False, False] and stop.done == [False, True, False]


def test_serve_flags_and_config_checks() -> None:
    from dppo_embodied.errors import ConfigError
    from inference.serving.cli import config_from_args
    from inference.serving.config import ServeConfig

    cfg, _ = config_from_args(["--model", "org/m", "--request-timeout", "5", "--max-request-timeout", "30",
                               "--max-model-len", "2048", "--max-work-tokens", "1024", "--max-image-pixels", "1000",
                               "--max-request-pixels", "3000", "--allow-origin", "http://a:1",
                               "--allow-origin", "http://b:2"])
    limits = cfg.limits()
    assert (limits.default_timeout_s, limits.max_timeout_s, limits.max_work_tokens) == (5, 30, 1024)
    assert (limits.max_image_pixels, limits.max_request_pixels) == (1000, 3000)
    assert cfg.max_model_len == 2048 and cfg.allowed_origins == ["http://a:1", "http://b:2"]
    for bad, match in (({"request_timeout_s": 700}, "request_timeout_s"), ({"allowed_origins": ["evil"]}, "origin"),
                       ({"max_model_len": 100}, "no room"), ({"max_work_tokens": 0}, "max_work_tokens"),
                       ({"max_image_pixels": True}, "max_image_pixels")):
        with pytest.raises(ConfigError, match=match):
            ServeConfig(model="m", **bad)  # type: ignore[arg-type]
