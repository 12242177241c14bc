"""The one media loader: PyAV decoding of MP4 files with numbered frames (start/end/fps honoured), frame folders,
the one order (video frames first, then images), the LRU cache, the video stream of the bridge's camera, and errors
that name the file or the extra."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dppo_embodied.errors import DependencyNotInstalled, MediaError
from dppo_embodied.media import MediaLoader, VideoStream, frame_indices, load_media, sample_frames
from dppo_embodied.types import AnswerType, EmbodiedSample, VideoRef

av = pytest.importorskip("av")


def numbered_mp4(path: Path, n_frames: int, fps: int, size: tuple[int, int] = (48, 32)) -> Path:
    """An MP4 (H.264, written with PyAV) whose frame i is uniformly grey at level 10 * i: a decoded frame's mean
    grey level divided by 10 is its index."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.options = {"crf": "0"}  # lossless: grey levels survive exactly
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(np.full((size[1], size[0], 3), 10 * i, np.uint8), format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def index_of(image: Image.Image) -> int:
    return round(float(np.asarray(image).mean()) / 10)


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return numbered_mp4(tmp_path / "clip.mp4", n_frames=20, fps=10)


def test_frame_indices_are_lmms_evals_linspace_rule() -> None:
    assert frame_indices(100, 5) == [int(i) for i in np.linspace(0, 99, 5, dtype=int)] == [0, 24, 49, 74, 99]
    assert frame_indices(3, 8) == [0, 1, 2]  # a shorter clip gives all its frames
    assert frame_indices(100, 3, fps=10, start=2.0, end=4.0) == [20, 30, 40]
    assert frame_indices(100, 3, fps=10, start=9.5, end=20.0) == [95, 97, 99]  # the end clamped to the clip
    assert frame_indices(0, 4) == []


def test_decoding_honours_start_end_and_the_containers_fps(tmp_path: Path, clip: Path) -> None:
    frames = sample_frames(VideoRef(str(clip)), 4)
    assert [index_of(f) for f in frames] == frame_indices(20, 4) == [0, 6, 12, 19]
    assert all(f.mode == "RGB" and f.size == (48, 32) for f in frames)
    assert [index_of(f) for f in sample_frames(VideoRef(str(clip), start=0.5, end=1.5), 3)] == [5, 10, 15]
    assert [index_of(f) for f in sample_frames(VideoRef(str(clip)), 32)] == list(range(20))  # all, in time order
    # seconds are converted with the file's own frame rate (the sample's fps only fills in when the file has none)
    slow = numbered_mp4(tmp_path / "slow.mp4", n_frames=20, fps=5)
    assert [index_of(f) for f in sample_frames(VideoRef(str(slow), fps=30, start=1.0, end=2.0), 3)] == [5, 7, 10]


def test_frame_folders_use_the_samples_fps(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(12):
        Image.new("RGB", (8, 8), (10 * i,) * 3).save(folder / f"{i:05d}.png")
    frames = sample_frames(VideoRef(str(folder), fps=3, start=1.0, end=3.0), 3)
    assert [index_of(f) for f in frames] == [3, 6, 9]
    assert [index_of(f) for f in sample_frames(VideoRef(str(folder)), 4)] == frame_indices(12, 4)


def test_one_order_video_frames_then_images_and_the_cache(tmp_path: Path, clip: Path) -> None:
    img = tmp_path / "still.png"
    Image.new("RGB", (8, 8), (250, 250, 250)).save(img)
    s = EmbodiedSample("s", "t", "q", "yes", AnswerType.YES_NO, images=[str(img)], video=VideoRef(str(clip)))
    media = load_media(s, frames=3)
    assert [index_of(m) for m in media] == [0, 9, 19, 25]  # frames first, then the image
    loader = MediaLoader(frames=3)
    first = loader.load(s)
    assert loader.load(s)[-1] is first[-1]  # the image file comes from the cache
    Image.new("RGB", (8, 8), (0, 0, 0)).save(img)
    import os

    os.utime(img, ns=(1, 1))  # a different modification time: the file is read again
    assert index_of(loader.load(s)[-1]) == 0
    assert [index_of(m) for m in MediaLoader(frames=3, cache_size=0).load(s)] == [0, 9, 19, 0]


def test_video_stream_plays_every_frame_and_rewinds(clip: Path) -> None:
    stream = VideoStream(clip)
    assert stream.fps == 10 and stream.size == (48, 32)
    seen = []
    while (frame := stream.read()) is not None:
        assert frame.shape == (32, 48, 3) and frame.dtype == np.uint8
        seen.append(round(float(frame.mean()) / 10))
    assert seen == list(range(20))
    stream.rewind()
    assert round(float(stream.read().mean()) / 10) == 0
    stream.close()
    stream.close()


def test_errors_name_the_file_or_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clip: Path) -> None:
    with pytest.raises(MediaError, match=r"missing\.mp4 does not exist"):
        sample_frames(VideoRef(str(tmp_path / "missing.mp4")), 4)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(MediaError, match=r"bad\.mp4"):
        sample_frames(VideoRef(str(bad)), 4)
    with pytest.raises(MediaError, match=r"frames of video .*clip\.mp4.*48 x 32"):
        sample_frames(VideoRef(str(clip)), 2, max_pixels=48 * 32 - 1)
    with pytest.raises(MediaError, match=">= 1"):
        sample_frames(VideoRef(str(clip)), 0)
    monkeypatch.setitem(sys.modules, "av", None)  # PyAV not installed
    with pytest.raises(DependencyNotInstalled, match=r"dppo-embodied\[video\]"):
        sample_frames(VideoRef(str(clip)), 2)
