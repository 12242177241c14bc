"""LeRobotDataset v3.0 without ``lerobot``: reader :class:`LeRobotDatasetV3`, writer :class:`LeRobotV3Writer`.

Layout (LeRobot >= 0.4, ``codebase_version`` ``"v3.0"``)::

    meta/info.json                                    fps, robot_type, totals, path templates, features
    meta/stats.json                                   per-feature min/max/mean/std/count
    meta/tasks.parquet                                task string (pandas index "task") -> task_index
    meta/episodes/chunk-000/file-000.parquet          one row per episode: length, tasks, dataset_from_index,
                                                      dataset_to_index, data/*, videos/<key>/* (chunk, file,
                                                      from_timestamp, to_timestamp)
    data/chunk-{chunk:03d}/file-{file:03d}.parquet    frames of many episodes: features + timestamp,
                                                      frame_index, episode_index, index, task_index
    videos/<key>/chunk-{chunk:03d}/file-{file:03d}.mp4 frames of many episodes back to back (H.264 here)

Only pyarrow, numpy and imageio (FFmpeg) are needed. The writer is what the robot bridge records deployments with.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dppo_embodied.errors import ConfigError, DataError, MediaError
from dppo_embodied.imports import require

CODEBASE_VERSION = "v3.0"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
CHUNK_SIZE = 1000
DATA_FILE_MB = 100
VIDEO_FILE_MB = 200
#: columns every frame carries besides the user features
DEFAULT_FEATURES: dict[str, dict[str, Any]] = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}
_NUMERIC = {"float32", "float64", "int64", "int32", "int16", "int8", "uint8", "bool"}


def _pa() -> Any:
    return require("pyarrow", extra="sim")


def _pq() -> Any:
    require("pyarrow", extra="sim")
    import pyarrow.parquet as pq

    return pq


# ================================================================================================== writer
class LeRobotV3Writer:
    """Write a LeRobotDataset v3.0 folder frame by frame.

    Example::

        w = LeRobotV3Writer("out/ds", fps=10, robot_type="tabletop_twin", features={
            "observation.state": {"dtype": "float32", "shape": [4], "names": ["x", "y", "z", "gripper"]},
            "action": {"dtype": "float32", "shape": [4], "names": ["x", "y", "z", "gripper"]},
            "observation.images.front": {"dtype": "video", "shape": [96, 96, 3],
                                         "names": ["height", "width", "channels"]}})
        w.add_frame({"observation.state": s, "action": a, "observation.images.front": rgb})
        w.save_episode(task="Pick up the red block.")
        w.finalize()

    Args:
        root: output folder (must not hold a dataset already).
        fps: frames per second.
        features: feature name -> ``{"dtype", "shape", "names"}``; dtype ``"video"`` for camera streams (stored as
            MP4, shape ``[H, W, 3]`` with even H and W), numeric dtypes for vectors and scalars.
        robot_type: free text stored in ``info.json``.
    """

    def __init__(self, root: str | Path, fps: float, features: dict[str, dict[str, Any]],
                 robot_type: str = "unknown") -> None:
        self.root = Path(root)
        if (self.root / "meta" / "info.json").exists():
            raise ConfigError(f"{self.root} already holds a dataset; choose an empty folder")
        if not fps > 0:
            raise ConfigError(f"fps must be > 0, got {fps!r}")
        self.fps, self.robot_type = float(fps), robot_type
        self.features: dict[str, dict[str, Any]] = {}
        for k, f in features.items():
            if k in DEFAULT_FEATURES:
                continue
            dtype, shape = f.get("dtype"), [int(s) for s in f.get("shape", [])]
            if dtype == "video":
                if len(shape) != 3 or shape[2] != 3 or shape[0] % 2 or shape[1] % 2:
                    raise ConfigError(f"video feature {k!r} needs shape [H, W, 3] with even H and W, got {shape}")
                f = {**f, "shape": shape, "names": f.get("names") or ["height", "width", "channels"],
                     "info": {"video.fps": self.fps, "video.height": shape[0], "video.width": shape[1],
                              "video.channels": 3, "video.codec": "h264", "video.pix_fmt": "yuv420p",
                              "video.is_depth_map": False, "has_audio": False}}
            elif dtype not in _NUMERIC:
                raise ConfigError(f"feature {k!r}: dtype {dtype!r} not supported; use video or one of "
                                  f"{sorted(_NUMERIC)}")
            self.features[k] = {**f, "shape": shape or [1]}
        self.video_keys = [k for k, f in self.features.items() if f["dtype"] == "video"]
        self.data_keys = [k for k in self.features if k not in self.video_keys]
        self._frames: list[dict[str, Any]] = []
        self._video_frames: dict[str, list[np.ndarray]] = {k: [] for k in self.video_keys}
        self._episodes: list[dict[str, Any]] = []
        self._tasks: dict[str, int] = {}
        self._total = 0
        self._data_file = (0, 0)
        self._data_writer: Any = None
        self._data_bytes = 0
        self._video: dict[str, dict[str, Any]] = {k: {"cf": (0, 0), "writer": None, "t": 0.0, "bytes": 0}
                                                   for k in self.video_keys}
        self._stats: dict[str, list[np.ndarray]] = {k: [] for k in self.features}
        self._finalized = False

    # ------------------------------------------------------------------------------------------ frame level
    def add_frame(self, frame: dict[str, Any]) -> None:
        """Buffer one frame: a value for every feature (images ``(H, W, 3) uint8``)."""
        if self._finalized:
            raise DataError("the writer is finalized; create a new one")
        missing = [k for k in self.features if k not in frame]
        if missing:
            raise DataError(f"frame is missing feature(s) {missing}; expected {sorted(self.features)}")
        row: dict[str, Any] = {}
        for k in self.data_keys:
            f = self.features[k]
            v = np.asarray(frame[k], dtype=f["dtype"]).reshape(-1)
            if v.size != int(np.prod(f["shape"])):
                raise DataError(f"feature {k!r}: expected {f['shape']} values, got {v.size}")
            row[k] = v
        for k in self.video_keys:
            img = np.asarray(frame[k])
            if img.shape != tuple(self.features[k]["shape"]) or img.dtype != np.uint8:
                raise DataError(f"feature {k!r}: expected uint8 {self.features[k]['shape']}, got {img.dtype} "
                                f"{img.shape}")
            self._video_frames[k].append(img)
        self._frames.append(row)

    def save_episode(self, task: str) -> int:
        """Write the buffered frames as one episode performing ``task``; returns the episode index."""
        if not self._frames:
            raise DataError("no frames to save; call add_frame() first")
        pa = _pa()
        ep = len(self._episodes)
        n = len(self._frames)
        task_index = self._tasks.setdefault(task, len(self._tasks))
        cols: dict[str, Any] = {}
        for k in self.data_keys:
            f = self.features[k]
            vals = np.stack([r[k] for r in self._frames])
            self._stats[k].append(vals.astype(np.float64))
            if f["shape"] == [1]:
                cols[k] = pa.array(vals[:, 0])
            else:
                cols[k] = pa.array(list(vals), type=pa.list_(pa.from_numpy_dtype(np.dtype(f["dtype"]))))
        cols["timestamp"] = pa.array(np.arange(n, dtype=np.float32) / np.float32(self.fps))
        cols["frame_index"] = pa.array(np.arange(n, dtype=np.int64))
        cols["episode_index"] = pa.array(np.full(n, ep, dtype=np.int64))
        cols["index"] = pa.array(np.arange(self._total, self._total + n, dtype=np.int64))
        cols["task_index"] = pa.array(np.full(n, task_index, dtype=np.int64))
        table = pa.table(cols)
        meta: dict[str, Any] = {"episode_index": ep, "tasks": [task], "length": n,
                                "dataset_from_index": self._total, "dataset_to_index": self._total + n}
        meta.update(self._write_data(table))
        for k in self.video_keys:
            meta.update(self._write_video(k, self._video_frames[k]))
            self._video_frames[k] = []
        meta["meta/episodes/chunk_index"], meta["meta/episodes/file_index"] = 0, 0
        self._episodes.append(meta)
        self._total += n
        self._frames = []
        return ep

    def _write_data(self, table: Any) -> dict[str, Any]:
        pq = _pq()
        if self._data_writer is not None and self._data_bytes > DATA_FILE_MB * 2**20:
            self._data_writer.close()
            self._data_writer = None
            self._data_file = _next(self._data_file)
        c, f = self._data_file
        if self._data_writer is None:
            path = self.root / DATA_PATH.format(chunk_index=c, file_index=f)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._data_writer = pq.ParquetWriter(path, table.schema)
            self._data_bytes = 0
        self._data_writer.write_table(table)
        self._data_bytes += table.nbytes
        return {"data/chunk_index": c, "data/file_index": f}

    def _write_video(self, key: str, frames: list[np.ndarray]) -> dict[str, Any]:
        st = self._video[key]
        if st["writer"] is not None and st["bytes"] > VIDEO_FILE_MB * 2**20:
            st["writer"].close()
            st["writer"], st["t"] = None, 0.0
            st["cf"] = _next(st["cf"])
        c, f = st["cf"]
        if st["writer"] is None:
            import imageio.v2 as imageio

            path = self.root / VIDEO_PATH.format(video_key=key, chunk_index=c, file_index=f)
            path.parent.mkdir(parents=True, exist_ok=True)
            st["writer"] = imageio.get_writer(path, fps=self.fps, codec="libx264", pixelformat="yuv420p",
                                              macro_block_size=1, ffmpeg_log_level="error",
                                              output_params=["-g", "1"])
            st["path"] = path
        for img in frames:
            st["writer"].append_data(img)
        start = st["t"]
        st["t"] += len(frames) / self.fps
        st["bytes"] += sum(int(img.nbytes) for img in frames) // 20  # rough compressed size
        small = np.stack(frames[:: max(1, len(frames) // 20)]).astype(np.float64) / 255.0
        self._stats[key].append(small.reshape(-1, 3))
        return {f"videos/{key}/chunk_index": c, f"videos/{key}/file_index": f,
                f"videos/{key}/from_timestamp": round(start, 6), f"videos/{key}/to_timestamp": round(st["t"], 6)}

    # ---------------------------------------------------------------------------------------------- finalize
    def finalize(self) -> Path:
        """Close files and write the metadata; returns the dataset root. Unsaved frames are dropped."""
        if self._finalized:
            return self.root
        pa, pq = _pa(), _pq()
        self._finalized = True
        if self._data_writer is not None:
            self._data_writer.close()
        for st in self._video.values():
            if st["writer"] is not None:
                st["writer"].close()
        meta_dir = self.root / "meta"
        meta_dir.mkdir(parents=True, exist_ok=True)
        # tasks.parquet: pandas DataFrame {task_index} indexed by the task string (index name "task")
        tasks = sorted(self._tasks, key=lambda t: self._tasks[t])
        t_table = pa.table({"task_index": pa.array([self._tasks[t] for t in tasks], pa.int64()),
                            "task": pa.array(tasks, pa.string())})
        pandas_meta = {"index_columns": ["task"], "column_indexes": [], "columns": [
            {"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64",
             "metadata": None},
            {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object",
             "metadata": None}], "creator": {"library": "dppo-embodied", "version": "0.1"},
            "pandas_version": "2.2.0"}
        t_table = t_table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})
        pq.write_table(t_table, meta_dir / "tasks.parquet")
        if self._episodes:
            ep_path = self.root / EPISODES_PATH.format(chunk_index=0, file_index=0)
            ep_path.parent.mkdir(parents=True, exist_ok=True)
            keys = list(self._episodes[0])
            pq.write_table(pa.table({k: [e[k] for e in self._episodes] for k in keys}), ep_path)
        features = {**self.features, **DEFAULT_FEATURES}
        info = {"codebase_version": CODEBASE_VERSION, "robot_type": self.robot_type,
                "total_episodes": len(self._episodes), "total_frames": self._total, "total_tasks": len(tasks),
                "chunks_size": CHUNK_SIZE, "data_files_size_in_mb": DATA_FILE_MB,
                "video_files_size_in_mb": VIDEO_FILE_MB, "fps": self.fps,
                "splits": {"train": f"0:{len(self._episodes)}"}, "data_path": DATA_PATH,
                "video_path": VIDEO_PATH if self.video_keys else None, "features": features}
        (meta_dir / "info.json").write_text(json.dumps(info, indent=2))
        (meta_dir / "stats.json").write_text(json.dumps(self._compute_stats(), indent=2))
        return self.root

    def _compute_stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, parts in self._stats.items():
            if not parts:
                continue
            v = np.concatenate(parts, axis=0)
            s = {"min": v.min(0), "max": v.max(0), "mean": v.mean(0), "std": v.std(0)}
            if k in self.video_keys:  # LeRobot keeps image stats per channel as (3, 1, 1)
                s = {n: a.reshape(3, 1, 1) for n, a in s.items()}
            out[k] = {n: a.tolist() for n, a in s.items()}
            out[k]["count"] = [int(v.shape[0])]
        return out

    def __enter__(self) -> LeRobotV3Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.finalize()


def _next(cf: tuple[int, int]) -> tuple[int, int]:
    c, f = cf
    return (c + 1, 0) if f + 1 >= CHUNK_SIZE else (c, f + 1)


# ================================================================================================== reader
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
        self.info: dict[str, Any] = json.loads(info_path.read_text())
        version = str(self.info.get("codebase_version", ""))
        if not version.startswith("v3"):
            raise DataError(f"{self.root}: codebase_version {version!r} is not v3.x; convert it with LeRobot's "
                            "v2.1 -> v3.0 converter first")
        pq = _pq()
        self.fps = float(self.info["fps"])
        self.features: dict[str, dict[str, Any]] = self.info["features"]
        self.video_keys = [k for k, f in self.features.items() if f.get("dtype") == "video"]
        self.image_keys = [k for k, f in self.features.items() if f.get("dtype") == "image"]
        t = pq.read_table(self.root / "meta" / "tasks.parquet").to_pydict()
        name_col = "task" if "task" in t else next((c for c in t if c.startswith("__index_level")), None)
        if name_col is None:
            raise DataError(f"{self.root}/meta/tasks.parquet has no task column")
        self.tasks = [""] * len(t["task_index"])
        for name, idx in zip(t[name_col], t["task_index"], strict=True):
            self.tasks[int(idx)] = str(name)
        ep_files = sorted((self.root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
        if not ep_files:
            raise DataError(f"{self.root}: no meta/episodes/chunk-*/file-*.parquet")
        rows: list[dict[str, Any]] = []
        for p in ep_files:
            d = pq.read_table(p).to_pydict()
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
            self._data_cache = {(c, f): _pq().read_table(path).to_pydict()}  # keep one file in memory
        return self._data_cache[(c, f)]

    def episode(self, i: int) -> Episode:
        """Episode ``i`` with its numeric columns as arrays (videos are read by :meth:`video_frames`)."""
        if not 0 <= i < self.num_episodes:
            raise DataError(f"episode {i} out of range; the dataset has {self.num_episodes}")
        m = self.episodes[i]
        d = self._data(int(m.get("data/chunk_index", 0)), int(m.get("data/file_index", 0)))
        sel = [k for k, e in enumerate(d["episode_index"]) if int(e) == int(m["episode_index"])]
        data = {}
        for key, col in d.items():
            if key in self.image_keys:
                continue
            data[key] = np.asarray([col[k] for k in sel])
        tasks = list(m.get("tasks") or [])
        if not tasks and "task_index" in data and len(data["task_index"]):
            tasks = [self.tasks[int(data["task_index"][0])]]
        return Episode(int(m["episode_index"]), int(m["length"]), tasks, data, m)

    def video_frames(self, i: int, key: str, indices: list[int] | None = None) -> np.ndarray:
        """Frames of episode ``i`` from video ``key`` as ``(T, H, W, 3) uint8`` (all, or the given frame indices)."""
        if key not in self.video_keys:
            raise DataError(f"unknown video key {key!r}; valid: {self.video_keys}")
        m = self.episodes[i]
        path = self.root / self.info["video_path"].format(
            video_key=key, chunk_index=int(m[f"videos/{key}/chunk_index"]),
            file_index=int(m[f"videos/{key}/file_index"]))
        if not path.is_file():
            raise MediaError(f"missing video file {path}")
        start = round(float(m[f"videos/{key}/from_timestamp"]) * self.fps)
        n = int(m["length"])
        want = list(range(n)) if indices is None else [int(k) for k in indices]
        if any(not 0 <= k < n for k in want):
            raise DataError(f"frame indices must lie in 0..{n - 1}")
        import imageio.v2 as imageio

        out: dict[int, np.ndarray] = {}
        targets = {start + k for k in want}
        with imageio.get_reader(path, "ffmpeg") as r:
            for j, frame in enumerate(r):
                if j in targets:
                    out[j - start] = np.asarray(frame)
                if j >= start + max(want):
                    break
        if len(out) != len(set(want)):
            raise MediaError(f"{path}: could not decode frames {sorted(set(want) - set(out))} of episode {i}")
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

        key = video_key or (self.video_keys[0] if self.video_keys else None)
        if key is None:
            raise DataError(f"{self.root} has no video feature to build visual questions from")
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
            frames = self.video_frames(i, key, idx)
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


def write_lerobot_dataset_v3(root: str | Path, episodes: list[tuple[str, list[dict[str, Any]]]], fps: float,
                             features: dict[str, dict[str, Any]], robot_type: str = "unknown") -> Path:
    """Write whole episodes at once: ``episodes`` is a list of ``(task, frames)``; see :class:`LeRobotV3Writer`."""
    with LeRobotV3Writer(root, fps, features, robot_type) as w:
        for task, frames in episodes:
            for fr in frames:
                w.add_frame(fr)
            w.save_episode(task)
    return Path(root)
