"""The one LeRobotDataset v3.0 writer (dppo_embodied.lerobot_writer) and the envs reader, on datasets the tests write.

LeRobot's own loader is checked in tests/envs/test_lerobot_compat.py (slow lane, its own interpreter)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pyarrow")
pytest.importorskip("av")

from dppo_embodied.errors import ConfigError, DataError
from dppo_embodied.lerobot_format import QUANTILES
from dppo_embodied.lerobot_writer import LeRobotWriter, write_lerobot_dataset
from dppo_embodied.types import AnswerType
from envs.lerobot_dataset import LeRobotDatasetV3

FEATURES = {
    "observation.state": {"dtype": "float32", "shape": [4], "names": ["x", "y", "z", "gripper"]},
    "action": {"dtype": "float32", "shape": [4], "names": ["x", "y", "z", "gripper"]},
    "next.reward": {"dtype": "float32", "shape": [1], "names": None},
    "observation.images.front": {"dtype": "video", "shape": [32, 48, 3], "names": ["height", "width", "channels"]},
    "observation.images.wrist": {"dtype": "image", "shape": [16, 24, 3], "names": ["height", "width", "channels"]},
    "note": {"dtype": "string", "shape": [1], "names": None},
}


def _frame(ep: int, t: int) -> dict:
    img = np.zeros((32, 48, 3), np.uint8)
    img[..., 0] = 30 * t + 40 * ep
    img[4:12, 4 * t: 4 * t + 6, 1] = 255
    wrist = np.full((16, 24, 3), 10 * t + ep, np.uint8)
    return {"observation.state": np.full(4, ep + t / 10, np.float32), "action": np.arange(4) + t,
            "next.reward": float(t), "observation.images.front": img, "observation.images.wrist": wrist,
            "note": f"e{ep}t{t}"}


EPISODES = [("Pick up the red block.", 6, 0), ("Push the blue ball.", 4, 1), ("Pick up the red block.", 5, 2)]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lerobot") / "ds"
    eps = [(task, [_frame(ep, t) for t in range(n)]) for task, n, ep in EPISODES]
    return write_lerobot_dataset(root, eps, fps=10, features=FEATURES, robot_type="tabletop_twin")


def test_v3_layout_as_lerobot_loads_it(dataset: Path) -> None:
    info = json.loads((dataset / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 10 and isinstance(info["fps"], int)
    assert info["total_episodes"] == 3 and info["total_frames"] == 15 and info["total_tasks"] == 2
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    for k in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        assert k in info["features"]
    assert info["features"]["observation.images.front"]["info"]["video.fps"] == 10
    for ep in range(3):  # one data and one video file per episode (written when it ends)
        assert (dataset / f"data/chunk-000/file-{ep:03d}.parquet").is_file()
        assert (dataset / f"videos/observation.images.front/chunk-000/file-{ep:03d}.mp4").is_file()
    assert not [p for p in dataset.rglob("*") if ".tmp" in p.name]


def test_stats_have_quantiles_and_per_episode_columns(dataset: Path) -> None:
    pd = pytest.importorskip("pandas")
    stats = json.loads((dataset / "meta/stats.json").read_text())
    for key in ("observation.state", "action", "next.reward", "observation.images.front", "observation.images.wrist",
                "timestamp", "index"):
        assert set(stats[key]) == {"min", "max", "mean", "std", "count", *QUANTILES}, key
    assert "note" not in stats  # strings get no stats, as in LeRobot
    assert np.array(stats["observation.images.front"]["mean"]).shape == (3, 1, 1)
    assert stats["next.reward"]["max"] == [5.0] and stats["next.reward"]["count"] == [15]
    rewards = np.concatenate([np.arange(n) for _, n, _ in EPISODES]).astype(float)
    assert stats["next.reward"]["mean"][0] == pytest.approx(rewards.mean())
    assert stats["next.reward"]["std"][0] == pytest.approx(rewards.std())  # pooled over the episodes, exact
    wrist_red = np.array(stats["observation.images.wrist"]["max"])[0, 0, 0]
    assert wrist_red == pytest.approx(50 / 255)  # episode 0, t = 5
    eps = pd.read_parquet(dataset / "meta/episodes/chunk-000/file-000.parquet")
    assert list(eps["stats/next.reward/max"].map(lambda v: v[0])) == [5.0, 3.0, 4.0]
    assert list(eps["stats/action/q50"].iloc[1]) == pytest.approx(np.median(np.arange(4)[:, None] + np.arange(4), 0))


def test_pandas_reads_it_like_lerobot(dataset: Path) -> None:
    pd = pytest.importorskip("pandas")
    tasks = pd.read_parquet(dataset / "meta/tasks.parquet")
    assert tasks.index.name == "task" and tasks.loc["Push the blue ball.", "task_index"] == 1
    assert tasks.iloc[1].name == "Push the blue ball."  # what LeRobot returns as ds[i]["task"]
    eps = pd.read_parquet(dataset / "meta/episodes/chunk-000/file-000.parquet")
    assert list(eps["dataset_from_index"]) == [0, 6, 10] and list(eps["dataset_to_index"]) == [6, 10, 15]
    assert list(eps["videos/observation.images.front/to_timestamp"]) == [0.6, 0.4, 0.5]
    data = pd.concat([pd.read_parquet(p) for p in sorted((dataset / "data").rglob("*.parquet"))])
    assert list(data["index"]) == list(range(15)) and data["timestamp"].dtype == np.float32
    assert np.allclose(data["timestamp"], data["frame_index"] / 10)  # timestamp = frame_index / fps


def test_reader_round_trip(dataset: Path) -> None:
    ds = LeRobotDatasetV3(dataset)
    assert ds.num_episodes == 3 and len(ds) == 15 and ds.robot_type == "tabletop_twin"
    assert ds.tasks == ["Pick up the red block.", "Push the blue ball."]
    assert ds.image_keys == ["observation.images.wrist"] and ds.video_keys == ["observation.images.front"]
    ep = ds.episode(1)
    assert ep.length == 4 and ep.tasks == ["Push the blue ball."]
    assert ep.data["observation.state"].shape == (4, 4) and list(ep.data["note"]) == [f"e1t{t}" for t in range(4)]
    assert np.allclose(ep.data["action"][2], np.arange(4) + 2)
    frames = ds.video_frames(2, "observation.images.front")
    assert frames.shape == (5, 32, 48, 3)
    red = frames[:, 20:30, :, 0].mean(axis=(1, 2))  # a flat region (H.264 is lossy at the edges)
    assert np.abs(red - (30 * np.arange(5) + 80)).max() <= 6
    two = ds.frames(0, "observation.images.front", [5, 0])
    assert two[0, 0, 0, 0] > two[1, 0, 0, 0]
    wrist = ds.frames(2, "observation.images.wrist", [3, 1])
    assert wrist.shape == (2, 16, 24, 3) and wrist[0, 0, 0, 0] == 32 and wrist[1, 0, 0, 0] == 12  # PNG: lossless
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


def test_no_episode_leaves_nothing_behind(tmp_path: Path) -> None:
    root = tmp_path / "never"
    with LeRobotWriter(root, 10, FEATURES) as w:
        w.add_frame(_frame(0, 0))  # buffered, never saved
    assert w.finalize() is None and not root.exists()
    with pytest.raises(DataError, match="no episode"):
        write_lerobot_dataset(root, [], fps=10, features=FEATURES)
    assert not root.exists()


def test_a_killed_run_keeps_its_finished_episodes(tmp_path: Path) -> None:
    w = LeRobotWriter(tmp_path / "ds", 10, FEATURES)
    for t in range(3):
        w.add_frame(_frame(0, t))
    w.save_episode("First.")
    w.add_frame(_frame(1, 0))  # the process dies here: no finalize()
    ds = LeRobotDatasetV3(tmp_path / "ds")
    assert ds.num_episodes == 1 and len(ds) == 3 and ds.tasks == ["First."]


def test_errors(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="already"):
        LeRobotWriter(dataset, 10, FEATURES)
    with pytest.raises(ConfigError, match="even"):
        LeRobotWriter(tmp_path / "x", 10, {"cam": {"dtype": "video", "shape": [31, 48, 3]}})
    for fps in (0, 7.5, True, "10"):
        with pytest.raises(ConfigError, match="positive integer"):
            LeRobotWriter(tmp_path / "x", fps, FEATURES)  # type: ignore[arg-type]
    w = LeRobotWriter(tmp_path / "y", 10.0, FEATURES)
    assert w.fps == 10
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
    with pytest.raises(DataError, match="lie in"):
        LeRobotDatasetV3(dataset).frames(0, "observation.images.front", [6])
