"""Budgets of ``dppo serve`` with the real tiny VLM (4,096-token context, 96x96 processor images) and the official
``openai`` client: prompts over the context, pixel budgets, exact prompt token counts, deadlines inside
``transformers`` generation, greedy ``n > 1``, seeded sampling."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from dppo_embodied.conversation import Conversation
from dppo_embodied.generation import ChatRequest
from inference.serving.batching import MicroBatcher
from inference.serving.server import ServeConfig, ServerThread, build_batcher, create_app

openai = pytest.importorskip("openai")
pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def tiny_server(tiny_vlm_path: Path) -> Iterator[tuple[ServerThread, MicroBatcher, Any]]:
    cfg = ServeConfig(model=str(tiny_vlm_path), port=0, served_model_name="tiny", default_max_tokens=16,
                      max_batch_size=4, threads=1)
    batcher = build_batcher(cfg)
    app = create_app(batcher, cfg.model_name, limits=cfg.limits())
    with ServerThread(app) as srv:
        yield srv, batcher, app
    batcher.close()


def client(srv: ServerThread) -> Any:
    return openai.OpenAI(base_url=srv.url, api_key="unused", max_retries=0, timeout=60)


def black_png(side: int) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (side, side)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def user(text: str, *urls: str) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [{"type": "image_url", "image_url": {"url": u}} for u in urls]
    return [{"role": "user", "content": [*parts, {"type": "text", "text": text}]}]


def test_context_and_image_size_come_from_the_model(tiny_server) -> None:  # type: ignore[no-untyped-def]
    _, batcher, app = tiny_server
    assert batcher.backend.max_model_len == 4096  # the tiny model's max_position_embeddings
    assert batcher.backend.keep_pixels == 96 * 96 and app.state.limits.keep_pixels == 96 * 96


def test_prompt_of_12000_words_is_refused(tiny_server) -> None:  # type: ignore[no-untyped-def]
    srv, batcher, _ = tiny_server
    words = " ".join(f"word{i % 97}" for i in range(12_000))
    before = batcher.stats.requests
    with client(srv) as c, pytest.raises(openai.BadRequestError) as e:
        c.chat.completions.create(model="tiny", messages=user(words), max_tokens=16)
    assert "context of 4096 tokens: the prompt may use at most 4080 tokens" in str(e.value)
    assert batcher.stats.requests == before  # never reached the model


def test_pixel_budgets(tiny_server) -> None:  # type: ignore[no-untyped-def]
    srv, _, _ = tiny_server
    big = black_png(4096)
    with client(srv) as c:
        with pytest.raises(openai.APIStatusError) as e:
            c.chat.completions.create(model="tiny", messages=user("hi", *[big] * 8), max_tokens=4)
        assert e.value.status_code == 413 and "per request" in str(e.value)
        raw = c.chat.completions.with_raw_response.create(model="tiny", messages=user("hi", big), max_tokens=4)
        small = c.chat.completions.create(model="tiny", messages=user("hi", black_png(96)), max_tokens=4)
    # a 4096x4096 image costs the image tokens of the processor's 96x96 budget (it is downscaled when decoded)
    assert raw.http_response.status_code == 200 and raw.parse().usage.prompt_tokens == small.usage.prompt_tokens


def test_prompt_tokens_count_image_tokens_exactly(tiny_server) -> None:  # type: ignore[no-untyped-def]
    _, batcher, _ = tiny_server
    images = [Image.new("RGB", (500, 300), "red"), Image.new("RGB", (64, 48), "blue")]
    conv = [{"role": "user", "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "where?"}]}]
    request = ChatRequest(Conversation("where?", tuple(images)))
    assert request.conversation.chat_messages() == conv
    processor = batcher.backend.policy.processor
    text = processor.apply_chat_template(conv, add_generation_prompt=True, tokenize=False)
    expected = processor(text=[text], images=[images], return_tensors="pt")["input_ids"].shape[1]
    assert batcher.backend.prompt_tokens(request) == expected > 10


def test_greedy_n_choices(tiny_server) -> None:  # type: ignore[no-untyped-def]
    srv, _, _ = tiny_server
    with client(srv) as c:
        out = c.chat.completions.create(model="tiny", messages=user("Say something."), max_tokens=6, n=3,
                                        temperature=0)
    assert len(out.choices) == 3 and len({ch.message.content for ch in out.choices}) == 1


def test_seeded_sampling_repeats_whatever_the_batch(tiny_server) -> None:  # type: ignore[no-untyped-def]
    srv, _, _ = tiny_server

    def ask(c: Any, seed: int | None, n: int = 1) -> list[str]:
        out = c.chat.completions.create(model="tiny", messages=user("Say something."), max_tokens=12,
                                        temperature=1.0, n=n, seed=seed)
        return [ch.message.content for ch in out.choices]

    with client(srv) as c:
        alone = ask(c, 7)
        with ThreadPoolExecutor(4) as ex:  # the same request again, sent with others (batched when they meet)
            batched = [f.result() for f in [ex.submit(ask, c, s) for s in (7, 8, 9, 7, None)]]
        n3, n3_again = ask(c, 7, n=3), ask(c, 7, n=3)
    assert batched[0] == batched[3] == alone
    assert len({b[0] for b in batched[:3]}) == 3  # other seeds, other answers (random tiny model at T = 1)
    assert n3 == n3_again and n3[0] == alone[0] and len(set(n3)) == 3


def test_deadline_cuts_generation(tiny_vlm_path: Path) -> None:
    cfg = ServeConfig(model=str(tiny_vlm_path), port=0, served_model_name="tiny", threads=1)
    batcher = build_batcher(cfg)
    try:
        with ServerThread(create_app(batcher, "tiny", limits=cfg.limits())) as srv, client(srv) as c:
            # warm up first, so a busy machine's first forward pass does not take the whole deadline
            c.chat.completions.create(model="tiny", messages=user("Hi."), max_tokens=2)
            batcher.backend.policy.model.generation_config.min_new_tokens = 4000  # a model that never stops
            raw = c.chat.completions.with_raw_response.create(
                model="tiny", messages=user("Tell me a long story."), max_tokens=4000, temperature=1.0,
                extra_body={"timeout_s": 0.5})
    finally:
        batcher.close()
    out = raw.parse()
    assert raw.headers["x-deadline-exceeded"] == "true" and out.choices[0].finish_reason == "length"
    assert 0 < out.usage.completion_tokens < 4000 and batcher.stats.cut_by_deadline == 1


def test_max_model_len_flag(tiny_vlm_path: Path) -> None:
    from dppo_embodied.errors import ConfigError

    with pytest.raises(ConfigError, match="exceeds the model's context of 4096"):
        build_batcher(ServeConfig(model=str(tiny_vlm_path), max_model_len=8192))
    batcher = build_batcher(ServeConfig(model=str(tiny_vlm_path), max_model_len=512))
    try:
        assert batcher.backend.max_model_len == 512
    finally:
        batcher.close()
