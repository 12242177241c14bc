"""Reading a LeRobotDataset v3.0 folder without ``lerobot``: :class:`LeRobotDatasetV3` (episodes, numeric and
string columns, ``image`` and ``video`` frames) and QA from its episodes (:meth:`LeRobotDatasetV3.to_samples`).

The layout is the core's (:mod:`dppo_embodied.lerobot_format`); datasets are written by the one writer,
:class:`dppo_embodied.lerobot_writer.LeRobotWriter` (the bridge recorder uses it too). Needs pyarrow; videos are
decoded with PyAV (extra ``video``).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dppo_embodied.errors import DataError, MediaError
from dppo_embodied.imports import require
from dppo_embodied.io import read_json
from dppo_embodied.lerobot_format import pyarrow, read_tasks

__all__ = ["Episode", "LeRobotDatasetV3"]


@dataclass
class Episode:
    """One episode: metadata, the numeric columns (``(T, ...)`` arrays) and its task strings."""

    index: int
    length: int
    tasks: list[str]
    data: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


class LeRobotDatasetV3:
    """Read a local LeRobotDataset v3.0 folder (no ``lerobot`` import).

    Args:
        root: the dataset folder (holding ``meta/info.json``).

    Raises:
        DataError: when the folder is not a v3.0 dataset (the message says what is missing or which version it is).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        info_path = self.root / "meta" / "info.json"
        if not info_path.is_file():
            raise DataError(f"{self.root}: no meta/info.json; not a LeRobotDataset folder")
        self.info: dict[str, Any] = read_json(info_path)
        version = str(self.info.get("codebase_version", ""))
        if not version.startswith("v3"):
            raise DataError(f"{self.root}: codebase_version {version!r} is not v3.x; convert it with LeRobot's "
                            "v2.1 -> v3.0 converter first")
        pq = pyarrow().parquet
        self.fps = float(self.info["fps"])
        self.features: dict[str, dict[str, Any]] = self.info["features"]
        self.video_keys = [k for k, f in self.features.items() if f.get("dtype") == "video"]
        self.image_keys = [k for k, f in self.features.items() if f.get("dtype") == "image"]
        tasks_path = self.root / "meta" / "tasks.parquet"
        self.tasks = read_tasks(pq.read_table(tasks_path), str(tasks_path))
        ep_files = sorted((self.root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
        if not ep_files:
            raise DataError(f"{self.root}: no meta/episodes/chunk-*/file-*.parquet")
        rows: list[dict[str, Any]] = []
        for p in ep_files:
            table = pq.read_table(p)
            d = table.select([c for c in table.column_names if not c.startswith("stats/")]).to_pydict()
            rows += [{k: d[k][i] for k in d} for i in range(len(d["episode_index"]))]
        self.episodes = sorted(rows, key=lambda r: int(r["episode_index"]))
        self._data_cache: dict[tuple[int, int], dict[str, Any]] = {}

    @property
    def num_episodes(self) -> int:
        """Number of episodes."""
        return len(self.episodes)

    @property
    def robot_type(self) -> str:
        """``info["robot_type"]``."""
        return str(self.info.get("robot_type"))

    def __len__(self) -> int:
        return int(self.info.get("total_frames", sum(int(e["length"]) for e in self.episodes)))

    def _data(self, c: int, f: int) -> dict[str, Any]:
        if (c, f) not in self._data_cache:
            path = self.root / self.info["data_path"].format(chunk_index=c, file_index=f)
            if not path.is_file():
                raise MediaError(f"missing data file {path}")
            self._data_cache = {(c, f): pyarrow().parquet.read_table(path).to_pydict()}  # keep one file in memory
        return self._data_cache[(c, f)]

    def _rows(self, i: int) -> tuple[dict[str, Any], list[int]]:
        if not 0 <= i < self.num_episodes:
            raise DataError(f"episode {i} out of range; the dataset has {self.num_episodes}")
        m = self.episodes[i]
        d = self._data(int(m.get("data/chunk_index", 0)), int(m.get("data/file_index", 0)))
        return d, [k for k, e in enumerate(d["episode_index"]) if int(e) == int(m["episode_index"])]

    def episode(self, i: int) -> Episode:
        """Episode ``i`` with its numeric and string columns as arrays (frames are read by :meth:`frames`)."""
        d, sel = self._rows(i)
        m = self.episodes[i]
        data = {}
        for key, col in d.items():
            if key in self.image_keys:
                continue
            data[key] = np.asarray([col[k] for k in sel])
        tasks = list(m.get("tasks") or [])
        if not tasks and "task_index" in data and len(data["task_index"]):
            tasks = [self.tasks[int(data["task_index"][0])]]
        return Episode(int(m["episode_index"]), int(m["length"]), tasks, data, m)

    def frames(self, i: int, key: str, indices: list[int] | None = None) -> np.ndarray:
        """Frames of episode ``i`` from an ``image`` or ``video`` feature as ``(T, H, W, 3) uint8`` (all, or the given
        frame indices, in that order)."""
        if key not in self.video_keys and key not in self.image_keys:
            raise DataError(f"unknown image/video key {key!r}; valid: {self.image_keys + self.video_keys}")
        if not 0 <= i < self.num_episodes:
            raise DataError(f"episode {i} out of range; the dataset has {self.num_episodes}")
        n = int(self.episodes[i]["length"])
        want = list(range(n)) if indices is None else [int(k) for k in indices]
        if not want or any(not 0 <= k < n for k in want):
            raise DataError(f"frame indices must be given and lie in 0..{n - 1}, got {indices}")
        if key in self.image_keys:
            from PIL import Image

            d, sel = self._rows(i)
            out = []
            for k in want:
                cell = d[key][sel[k]]
                data = cell.get("bytes") if isinstance(cell, dict) else cell
                try:
                    with Image.open(io.BytesIO(data)) as im:
                        out.append(np.asarray(im.convert("RGB")))
                except Exception as e:  # PIL raises several types on bad bytes
                    raise MediaError(f"{self.root}: episode {i} frame {k} of {key!r} does not decode: {e}") from e
            return np.stack(out)
        return self._video_frames(i, key, want)

    def video_frames(self, i: int, key: str, indices: list[int] | None = None) -> np.ndarray:
        """Frames of episode ``i`` from video ``key`` (see :meth:`frames`)."""
        if key not in self.video_keys:
            raise DataError(f"unknown video key {key!r}; valid: {self.video_keys}")
        return self.frames(i, key, indices)

    def _video_frames(self, i: int, key: str, want: list[int]) -> np.ndarray:
        """Decode the wanted frames (a frame's index is ``round(time * fps)`` minus the episode's first frame)."""
        m = self.episodes[i]
        path = self.root / self.info["video_path"].format(
            video_key=key, chunk_index=int(m[f"videos/{key}/chunk_index"]),
            file_index=int(m[f"videos/{key}/file_index"]))
        if not path.is_file():
            raise MediaError(f"missing video file {path}")
        av = require("av", extra="video")
        start = round(float(m[f"videos/{key}/from_timestamp"]) * self.fps)
        targets, last = set(want), max(want)
        out: dict[int, np.ndarray] = {}
        try:
            with av.open(str(path)) as container:
                for frame in container.decode(container.streams.video[0]):
                    j = round(float(frame.pts * frame.time_base) * self.fps) - start
                    if j in targets:
                        out[j] = frame.to_ndarray(format="rgb24")
                    if j >= last:
                        break
        except Exception as e:  # av raises several types on a corrupt file
            raise MediaError(f"{path}: cannot decode ({type(e).__name__}: {e})") from e
        if len(out) != len(targets):
            raise MediaError(f"{path}: could not decode frames {sorted(targets - set(out))} of episode {i}")
        return np.stack([out[k] for k in want])

    def iter_episodes(self) -> Iterator[Episode]:
        """All episodes in order."""
        for i in range(self.num_episodes):
            yield self.episode(i)

    def to_samples(self, out_dir: str | Path, video_key: str | None = None, num_frames: int = 4,
                   seed: int = 0) -> list[Any]:
        """Embodied QA from the episodes (answers exact from the recorded metadata).

        Per episode: a ``scene_action_understanding`` MCQ "which task is the robot performing?" over the dataset's
        tasks (when it has at least two), and a ``temporal_sequential`` yes/no "are these frames in recorded
        order?" (a seeded half are shuffled). Frames are written as PNGs under ``out_dir``.

        Returns:
            A list of :class:`~dppo_embodied.types.EmbodiedSample`.
        """
        from PIL import Image

        from dppo_embodied.types import AnswerType, EmbodiedSample

        key = video_key or next(iter(self.video_keys + self.image_keys), None)
        if key is None:
            raise DataError(f"{self.root} has no image or video feature to build visual questions from")
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(seed)
        samples = []
        for i in range(self.num_episodes):
            ep = self.episode(i)
            k = min(num_frames, ep.length)
            if k < 2:
                continue
            idx = [round(j * (ep.length - 1) / (k - 1)) for j in range(k)]
            frames = self.frames(i, key, idx)
            paths = []
            for j, fr in enumerate(frames):
                p = out / f"ep{i:05d}_f{j}.png"
                Image.fromarray(fr).save(p)
                paths.append(str(p.resolve()))
            meta = {"image_size": [int(frames.shape[2]), int(frames.shape[1])], "episode_index": ep.index,
                    "horizon_s": round((idx[-1] - idx[0]) / self.fps, 3), "num_frames": k,
                    "source_root": str(self.root)}
            task = ep.tasks[0] if ep.tasks else ""
            others = [t for t in self.tasks if t and t != task]
            if task and others:
                opts = [task, *[others[int(j)] for j in rng.permutation(len(others))[:3]]]
                order = rng.permutation(len(opts))
                opts = [opts[int(j)] for j in order]
                samples.append(EmbodiedSample(
                    id=f"lerobot/{self.root.name}/task/{i:05d}", source="lerobot-v3", answer_type=AnswerType.MCQ,
                    question="These frames show a robot episode in order. Which task is the robot performing?",
                    answer=chr(65 + opts.index(task)), options=opts, images=paths,
                    capabilities=["scene_action_understanding"], reasoning=f"The episode is labelled '{task}'.",
                    metadata={**meta, "template": "lerobot_task"}))
            shuffled = bool(rng.random() < 0.5)
            perm = list(range(k))
            if shuffled:
                while perm == sorted(perm):
                    perm = [int(j) for j in rng.permutation(k)]
            samples.append(EmbodiedSample(
                id=f"lerobot/{self.root.name}/order/{i:05d}", source="lerobot-v3", answer_type=AnswerType.YES_NO,
                question="Are these frames shown in the order they were recorded?", answer="no" if shuffled else "yes",
                images=[paths[j] for j in perm], capabilities=["temporal_sequential"],
                reasoning=("The frames were shuffled." if shuffled else "The frames follow the recording order."),
                metadata={**meta, "template": "lerobot_order", "permutation": perm}))
        return samples
