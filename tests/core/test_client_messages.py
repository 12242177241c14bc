"""Image encoding (dppo_embodied.images) and OpenAI message building (build_messages, the one-turn Conversation's
openai_messages): resizing, inputs, errors naming the path, layouts."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from dppo_embodied import images as images_mod
from dppo_embodied.client import build_messages
from dppo_embodied.conversation import Conversation
from dppo_embodied.errors import MediaError
from dppo_embodied.images import decode_data_url, encode_image, load_image, to_data_url


def rgb(h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def jpeg_size(data_url: str) -> tuple[int, int]:
    """(width, height) of a data URL, asserting it is a valid JPEG."""
    with Image.open(io.BytesIO(decode_data_url(data_url))) as im:
        assert im.format == "JPEG"
        im.load()
        return im.size


# ------------------------------------------------------------------------------------------------ images


@pytest.mark.parametrize("use_cv2", [True, False])
def test_encode_image_inputs_and_resize(monkeypatch: pytest.MonkeyPatch, tmp_path, use_cv2: bool) -> None:
    if not use_cv2:
        monkeypatch.setattr(images_mod, "_cv2_checked", True)
        monkeypatch.setattr(images_mod, "_cv2", None)
    elif images_mod._get_cv2() is None:
        pytest.skip("cv2 not installed")
    arr = rgb(48, 64)
    for src in (arr, arr[:, :, 0], Image.fromarray(arr), np.dstack([arr, arr[:, :, :1]])):
        data = encode_image(src, quality=85)
        with Image.open(io.BytesIO(data)) as im:
            assert (im.format, im.size) == ("JPEG", (64, 48))
    path = tmp_path / "frame.png"
    Image.fromarray(arr).save(path)
    with Image.open(io.BytesIO(encode_image(path, max_side=32))) as im:
        assert im.size == (32, 24)
    with Image.open(io.BytesIO(encode_image(str(path), fmt="png"))) as im:
        assert (im.format, im.size) == ("PNG", (64, 48))
        assert np.array_equal(np.asarray(im.convert("RGB")), arr)  # PNG is lossless
    jpeg = encode_image(arr)
    assert encode_image(jpeg) is jpeg or encode_image(jpeg) == jpeg  # already-encoded bytes pass through
    with Image.open(io.BytesIO(encode_image(jpeg, max_side=16))) as im:
        assert im.size == (16, 12)
    assert jpeg_size(to_data_url(arr, max_side=1000)) == (64, 48)  # never upscales


def test_image_errors_name_the_path(tmp_path) -> None:
    missing = tmp_path / "nope.jpg"
    with pytest.raises(MediaError, match=r"nope\.jpg"):
        load_image(missing)
    with pytest.raises(MediaError, match=r"nope\.jpg"):
        encode_image(missing)
    bad = tmp_path / "corrupt.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(MediaError, match=r"corrupt\.jpg"):
        load_image(bad)
    with pytest.raises(MediaError, match="uint8"):
        encode_image(np.zeros((8, 8, 3), dtype=np.float32))
    with pytest.raises(MediaError, match="shape"):
        encode_image(np.zeros((3, 8, 8, 2), dtype=np.uint8))
    with pytest.raises(MediaError, match="remote"):
        encode_image("https://example.com/a.jpg")
    assert load_image(_write_png(tmp_path)).mode == "RGB"


def _write_png(tmp_path) -> str:
    p = tmp_path / "grey.png"
    Image.fromarray(np.zeros((4, 5), dtype=np.uint8)).save(p)
    return str(p)


# ----------------------------------------------------------------------------------------------- messages


def test_build_messages_text_before_images_by_default() -> None:
    frames = [rgb(480, 640), rgb(100, 50)]
    msgs = build_messages("pick the cube", images=frames, system="You are a robot.", max_side=320)
    assert msgs[0] == {"role": "system", "content": [{"type": "text", "text": "You are a robot."}]}
    user = msgs[1]
    assert user["role"] == "user"
    assert [p["type"] for p in user["content"]] == ["text", "image_url", "image_url"]
    assert user["content"][0]["text"] == "pick the cube"
    urls = [p["image_url"]["url"] for p in user["content"][1:]]
    assert all(u.startswith("data:image/jpeg;base64,") for u in urls)
    assert jpeg_size(urls[0]) == (320, 240)
    assert jpeg_size(urls[1]) == (50, 100)


def test_build_messages_variants() -> None:
    first = build_messages("q", images=rgb(8, 8), images_first=True)  # a single image, not a sequence
    assert [p["type"] for p in first[0]["content"]] == ["image_url", "text"]
    assert build_messages("just text") == [{"role": "user", "content": [{"type": "text", "text": "just text"}]}]
    # the one builder: a one-turn Conversation's wire form, the form the bridge and the eval backends send
    conv = Conversation("q", (rgb(8, 8),), system="s", media_first=False)
    assert build_messages("q", images=[rgb(8, 8)], system="s") == conv.openai_messages()
    url = to_data_url(rgb(8, 8))
    assert build_messages("", images=[url])[0]["content"] == [{"type": "image_url", "image_url": {"url": url}}]
