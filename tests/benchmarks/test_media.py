"""Video frame sampling (uniform, honouring start/end and fps), frame folders, image decoding, records I/O."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.data import image_value
from benchmarks.media import frame_indices, open_image, sample_frames
from benchmarks.records import RecordWriter, read_records
from dppo_embodied.errors import DataError, MediaError
from dppo_embodied.types import VideoRef
from tests.benchmarks import fixtures as fx


def test_frame_indices_uniform_with_bounds() -> None:
    assert frame_indices(100, 5) == [0, 24, 49, 74, 99]  # np.linspace(0, 99, 5) truncated, ends included
    assert frame_indices(3, 8) == [0, 1, 2]  # shorter clips give all their frames
    assert frame_indices(100, 3, fps=10, start=2.0, end=4.0) == [20, 30, 40]
    assert frame_indices(100, 3, fps=10, start=9.5, end=20.0) == [95, 97, 99]  # end clamped to the clip
    assert frame_indices(0, 4) == []


def _gray(img) -> int:
    return round(float(np.asarray(img).mean()) / 10)


def test_sample_frames_from_video_file(tmp_path: Path) -> None:
    path = fx.write_video(tmp_path / "v.mp4", n_frames=20, fps=10)
    frames = sample_frames(VideoRef(str(path)), 4)
    assert len(frames) == 4 and frames[0].mode == "RGB"
    assert [_gray(f) for f in frames] == [0, 6, 12, 19]
    bounded = sample_frames(VideoRef(str(path), start=0.5, end=1.5), 3)
    assert [_gray(f) for f in bounded] == [5, 10, 15]


def test_sample_frames_from_frame_folder(tmp_path: Path) -> None:
    for i in range(12):
        fx.save_image(tmp_path / "frames" / f"{i:05d}.jpg", color=(10 * i,) * 3)
    frames = sample_frames(VideoRef(str(tmp_path / "frames"), fps=3, start=1.0, end=3.0), 3)
    assert [_gray(f) for f in frames] == [3, 6, 9]


def test_media_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match=r"missing\.mp4"):
        sample_frames(VideoRef(str(tmp_path / "missing.mp4")), 4)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(MediaError, match=r"bad\.mp4"):
        sample_frames(VideoRef(str(bad)), 4)
    with pytest.raises(MediaError, match=r"nope\.png"):
        open_image(str(tmp_path / "nope.png"))
    with pytest.raises(MediaError, match="bytes"):
        open_image(b"not an image")


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
