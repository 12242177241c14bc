"""Benchmark media through the core: the one image opener (bombs, oversized and corrupt images become MediaError)
for docs and video frames, dataset image cells, records I/O. Video decoding itself: tests/core/test_media.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.data import image_value
from benchmarks.records import RecordWriter, read_records
from dppo_embodied.errors import DataError, MediaError
from dppo_embodied.images import encode_image, load_image
from dppo_embodied.media import load_media, sample_frames
from dppo_embodied.types import VideoRef
from tests.benchmarks import fixtures as fx


def test_media_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match=r"nope\.png"):
        load_image(str(tmp_path / "nope.png"))
    with pytest.raises(MediaError, match="bytes"):
        load_image(b"not an image")


def test_image_values_from_dataset_cells(tmp_path: Path) -> None:
    png = fx.png_bytes()
    assert image_value({"bytes": png, "path": "a.png"}) == png
    import base64

    assert image_value(base64.b64encode(png).decode()) == png
    assert image_value("images/a.jpg", tmp_path) == str(tmp_path / "images" / "a.jpg")
    with pytest.raises(DataError):
        image_value(None)
    with pytest.raises(DataError):
        image_value("definitely not base64!!")


def test_record_writer_cuts_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    path.write_text('{"id": "a", "score": 1}\n{"id": "b", "sc')
    assert set(read_records(path)) == {"a"}
    with RecordWriter(path) as w:
        w.write({"id": "c", "score": 0})
    assert path.read_text().splitlines() == ['{"id": "a", "score": 1}', '{"id": "c", "score": 0}']
    with RecordWriter(path) as w:
        w.write({"id": "a", "score": 0.5})
    assert read_records(path)["a"]["score"] == 0.5  # the last record of an id wins


def test_the_one_opener_refuses_bombs_and_oversized_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(fx.bomb_png())  # 109 kB, 30000 x 30000
    with pytest.raises(MediaError, match=r"bomb\.png.*decompression bomb"):
        load_image(bomb)
    with pytest.raises(MediaError, match="decompression bomb"):
        load_image(bomb.read_bytes())
    with pytest.raises(MediaError, match="decompression bomb"):
        encode_image(bomb.read_bytes(), max_side=64)  # the request encoder goes through the same guard
    # the budget holds whatever the process-wide Pillow setting is, and is checked before decoding
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    with pytest.raises(MediaError, match=r"30000 x 30000 = 900,000,000 pixels, over the limit of 89,478,485"):
        load_image(bomb)
    big = fx.save_image(tmp_path / "big.png", size=(200, 100))
    with pytest.raises(MediaError, match=r"200 x 100 = 20,000 pixels, over the limit of 19,999"):
        load_image(big, max_pixels=19_999)
    assert load_image(big, max_pixels=20_000).size == (200, 100)
    assert load_image(big, mode="L").mode == "L"


def test_the_one_opener_turns_any_decoder_failure_into_a_media_error(tmp_path: Path) -> None:
    trunc = tmp_path / "trunc.jpg"
    trunc.write_bytes(fx.truncated_jpeg())
    with pytest.raises(MediaError, match=r"trunc\.jpg.*truncated"):
        load_image(trunc)
    png = fx.png_bytes()
    broken = png[:33] + b"\x00\x00\x00\x0dIDAT" + b"\xff" * 13 + png[-12:]  # an IDAT chunk that is not zlib data
    with pytest.raises(MediaError, match="bytes"):
        load_image(broken)
    with pytest.raises(MediaError, match="unsupported image type"):
        load_image(3.5)  # type: ignore[arg-type]


def test_docs_and_video_frames_use_the_budget(tmp_path: Path) -> None:
    from benchmarks.doc import Doc

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(fx.bomb_png())
    with pytest.raises(MediaError, match="decompression bomb"):
        load_media(Doc(id="x", task="t", prompt="p", images=[str(bomb)]), 4)
    video = fx.write_video(tmp_path / "v.mp4", n_frames=5, size=(32, 24))
    assert len(sample_frames(VideoRef(str(video)), 2)) == 2
    with pytest.raises(MediaError, match=r"frames of video .*v\.mp4.*32 x 24"):
        sample_frames(VideoRef(str(video)), 2, max_pixels=32 * 24 - 1)
