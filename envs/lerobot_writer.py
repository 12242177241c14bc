"""Writing a LeRobotDataset v3.0 folder without ``lerobot``: :class:`LeRobotV3Writer` (frame by frame) and
:func:`write_lerobot_dataset_v3` (whole episodes). The layout is described in :mod:`envs.lerobot_dataset`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from dppo_embodied.errors import ConfigError, DataError
from envs.lerobot_format import (
    _NUMERIC,
    CHUNK_SIZE,
    CODEBASE_VERSION,
    DATA_FILE_MB,
    DATA_PATH,
    DEFAULT_FEATURES,
    EPISODES_PATH,
    VIDEO_FILE_MB,
    VIDEO_PATH,
    _pa,
    _pq,
)


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


def write_lerobot_dataset_v3(root: str | Path, episodes: list[tuple[str, list[dict[str, Any]]]], fps: float,
                             features: dict[str, dict[str, Any]], robot_type: str = "unknown") -> Path:
    """Write whole episodes at once: ``episodes`` is a list of ``(task, frames)``; see :class:`LeRobotV3Writer`."""
    with LeRobotV3Writer(root, fps, features, robot_type) as w:
        for task, frames in episodes:
            for fr in frames:
                w.add_frame(fr)
            w.save_episode(task)
    return Path(root)
