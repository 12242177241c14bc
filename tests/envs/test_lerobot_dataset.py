"""LeRobotDataset v3.0 writer and reader (no lerobot import), on a dataset the test writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pyarrow")
pytest.importorskip("imageio_ffmpeg")

from dppo_embodied.errors import ConfigError, DataError
from dppo_embodied.types import AnswerType
from envs.lerobot_dataset import LeRobotDatasetV3, LeRobotV3Writer, write_lerobot_dataset_v3

FEATURES = {
    "observation.state": {"dtype": "float32", "shape": [4], "names": ["x", "y", "z", "gripper"]},
    "action": {"dtype": "float32", "shape": [4], "names": ["x", "y", "z", "gripper"]},
    "next.reward": {"dtype": "float32", "shape": [1], "names": None},
    "observation.images.front": {"dtype": "video", "shape": [32, 48, 3], "names": ["height", "width", "channels"]},
}


def _frame(ep: int, t: int) -> dict:
    img = np.zeros((32, 48, 3), np.uint8)
    img[..., 0] = 30 * t + 40 * ep
    img[4:12, 4 * t: 4 * t + 6, 1] = 255
    return {"observation.state": np.full(4, ep + t / 10, np.float32), "action": np.arange(4) + t,
            "next.reward": float(t), "observation.images.front": img}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lerobot") / "ds"
    eps = [("Pick up the red block.", [_frame(0, t) for t in range(6)]),
           ("Push the blue ball.", [_frame(1, t) for t in range(4)]),
           ("Pick up the red block.", [_frame(2, t) for t in range(5)])]
    return write_lerobot_dataset_v3(root, eps, fps=10, features=FEATURES, robot_type="tabletop_twin")


def test_exact_v3_layout(dataset: Path) -> None:
    info = json.loads((dataset / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 10
    assert info["total_episodes"] == 3 and info["total_frames"] == 15 and info["total_tasks"] == 2
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    for k in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        assert k in info["features"]
    assert info["features"]["observation.images.front"]["info"]["video.fps"] == 10
    for rel in ("data/chunk-000/file-000.parquet", "meta/episodes/chunk-000/file-000.parquet", "meta/tasks.parquet",
                "meta/stats.json", "videos/observation.images.front/chunk-000/file-000.mp4"):
        assert (dataset / rel).is_file(), rel
    stats = json.loads((dataset / "meta/stats.json").read_text())
    assert np.array(stats["observation.images.front"]["mean"]).shape == (3, 1, 1)
    assert stats["next.reward"]["max"] == [5.0]


def test_pandas_reads_it_like_lerobot(dataset: Path) -> None:
    pd = pytest.importorskip("pandas")
    tasks = pd.read_parquet(dataset / "meta/tasks.parquet")
    assert tasks.index.name == "task" and tasks.loc["Push the blue ball.", "task_index"] == 1
    eps = pd.read_parquet(dataset / "meta/episodes/chunk-000/file-000.parquet")
    assert list(eps["dataset_from_index"]) == [0, 6, 10] and list(eps["dataset_to_index"]) == [6, 10, 15]
    assert list(eps["videos/observation.images.front/from_timestamp"]) == [0.0, 0.6, 1.0]
    data = pd.read_parquet(dataset / "data/chunk-000/file-000.parquet")
    assert list(data["index"]) == list(range(15)) and data["timestamp"].dtype == np.float32


def test_reader_round_trip(dataset: Path) -> None:
    ds = LeRobotDatasetV3(dataset)
    assert ds.num_episodes == 3 and len(ds) == 15 and ds.robot_type == "tabletop_twin"
    assert ds.tasks == ["Pick up the red block.", "Push the blue ball."]
    ep = ds.episode(1)
    assert ep.length == 4 and ep.tasks == ["Push the blue ball."]
    assert ep.data["observation.state"].shape == (4, 4)
    assert np.allclose(ep.data["action"][2], np.arange(4) + 2)
    frames = ds.video_frames(2, "observation.images.front")
    assert frames.shape == (5, 32, 48, 3)
    red = frames[:, 20:30, :, 0].mean(axis=(1, 2))  # a flat region (H.264 is lossy at the edges)
    assert np.abs(red - (30 * np.arange(5) + 80)).max() <= 6
    two = ds.video_frames(0, "observation.images.front", [5, 0])
    assert two[0, 0, 0, 0] > two[1, 0, 0, 0]
    assert [e.index for e in ds.iter_episodes()] == [0, 1, 2]


def test_to_samples(dataset: Path, tmp_path: Path) -> None:
    samples = LeRobotDatasetV3(dataset).to_samples(tmp_path, num_frames=3, seed=0)
    task_q = [s for s in samples if s.answer_type is AnswerType.MCQ]
    order_q = [s for s in samples if s.answer_type is AnswerType.YES_NO]
    assert len(task_q) == 3 and len(order_q) == 3
    assert task_q[1].options[ord(task_q[1].answer) - 65] == "Push the blue ball."
    for s in order_q:
        perm = s.metadata["permutation"]
        assert (s.answer == "yes") == (perm == sorted(perm))
        assert all(Path(p).is_file() for p in s.images)


def test_errors(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="already"):
        LeRobotV3Writer(dataset, 10, FEATURES)
    with pytest.raises(ConfigError, match="even"):
        LeRobotV3Writer(tmp_path / "x", 10, {"cam": {"dtype": "video", "shape": [31, 48, 3]}})
    w = LeRobotV3Writer(tmp_path / "y", 10, FEATURES)
    with pytest.raises(DataError, match="missing"):
        w.add_frame({"action": np.zeros(4)})
    with pytest.raises(DataError, match="no frames"):
        w.save_episode("t")
    with pytest.raises(DataError, match=r"info\.json"):
        LeRobotDatasetV3(tmp_path)
    old = tmp_path / "old" / "meta"
    old.mkdir(parents=True)
    (old / "info.json").write_text(json.dumps({"codebase_version": "v2.1", "fps": 10, "features": {}}))
    with pytest.raises(DataError, match=r"v2\.1"):
        LeRobotDatasetV3(old.parent)
    with pytest.raises(DataError, match="out of range"):
        LeRobotDatasetV3(dataset).episode(3)
