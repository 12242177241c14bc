"""The one LeRobotDataset v3.0 writer (torch-free, no ``lerobot``): :class:`LeRobotWriter`.

Used by the bridge recorder (:mod:`robot_bridge.recording`) and the envs datasets (:mod:`envs.lerobot_dataset`).
It writes what LeRobot's own ``LeRobotDataset`` loader expects (layout: :mod:`dppo_embodied.lerobot_format`):
integer ``fps``, ``timestamp = frame_index / fps``, ``meta/tasks.parquet`` indexed by the task string, stats with
quantiles in ``meta/stats.json`` and per episode in the episodes table, ``image`` features as encoded bytes in the
parquet and ``video`` features as H.264 MP4 (PyAV) whose frame times are exactly ``frame_index / fps``.

Crash-safe and leaves nothing behind: nothing is written before the first episode is saved; each saved episode
gets its own data (and video) file, and the metadata is rewritten atomically after it, so a killed run leaves a
loadable dataset of its finished episodes, and a run that saved no episode leaves no folder at all.
"""

from __future__ import annotations

import io
import logging
import shutil
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from dppo_embodied.errors import ConfigError, DataError, MediaError
from dppo_embodied.imports import require
from dppo_embodied.io import atomic_write_bytes, atomic_write_json
from dppo_embodied.lerobot_format import (
    CHUNK_SIZE,
    CODEBASE_VERSION,
    DATA_FILE_MB,
    DATA_PATH,
    DEFAULT_FEATURES,
    EPISODES_PATH,
    VIDEO_FILE_MB,
    VIDEO_PATH,
    aggregate_stats,
    check_features,
    episode_stats,
    file_of_episode,
    flat_stats_columns,
    image_sample,
    parquet_bytes,
    pyarrow,
    tasks_table,
)

__all__ = ["LeRobotWriter", "encode_png", "write_lerobot_dataset"]

logger = logging.getLogger(__name__)

_PA_TYPES = {"float32": "float32", "float64": "float64", "int64": "int64", "int32": "int32", "int16": "int16",
             "int8": "int8", "uint8": "uint8", "bool": "bool_"}


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of an ``(H, W, 3) uint8`` image (how LeRobot stores ``image`` features: lossless)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _decode_image(data: bytes) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"))
    except Exception as e:  # PIL raises several types on bad bytes
        raise MediaError(f"image bytes do not decode ({type(e).__name__}: {e})") from e


class LeRobotWriter:
    """Write a LeRobotDataset v3.0 folder episode by episode.

    Example::

        w = LeRobotWriter("out/ds", fps=10, robot_type="tabletop_twin", features={
            "observation.state": {"dtype": "float32", "shape": [4], "names": ["x", "y", "z", "gripper"]},
            "action": {"dtype": "float32", "shape": [4], "names": ["x", "y", "z", "gripper"]},
            "observation.images.front": {"dtype": "video", "shape": [96, 96, 3], "names": None}})
        w.add_frame({"observation.state": s, "action": a, "observation.images.front": rgb})
        w.save_episode(task="Pick up the red block.")
        w.finalize()

    Args:
        root: the dataset folder (created with the first saved episode).
        fps: frames per second, a positive integer (LeRobot turns ``delta_timestamps`` into frame offsets with it).
        features: name -> ``{"dtype", "shape", "names"}`` (see :func:`~dppo_embodied.lerobot_format.check_features`).
            ``image`` values are ``(H, W, 3) uint8`` arrays (stored as PNG) or already encoded JPEG/PNG bytes (stored
            as given, e.g. the exact JPEG a model received); ``video`` values are ``(H, W, 3) uint8`` arrays.
        robot_type: free text stored in ``info.json``.
        overwrite: replace a dataset already in ``root`` (only once the first episode is saved).

    Raises:
        ConfigError: ``fps`` is not a positive integer, a feature is not supported, or ``root`` already holds a
            dataset (without ``overwrite``).
    """

    def __init__(self, root: str | Path, fps: int | float, features: Mapping[str, Mapping[str, Any]],
                 robot_type: str = "unknown", *, overwrite: bool = False) -> None:
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or fps <= 0 or int(fps) != fps:
            raise ConfigError(f"fps must be a positive integer (LeRobot stores an int), got {fps!r}")
        pyarrow()
        self.root, self.fps, self.robot_type, self.overwrite = Path(root), int(fps), robot_type, overwrite
        if (self.root / "meta" / "info.json").exists() and not overwrite:
            raise ConfigError(f"{self.root} already holds a dataset; choose an empty folder, or replace it "
                              "(dppo bridge --overwrite; overwrite=True)")
        self.features = check_features(features, self.fps)
        self.video_keys = [k for k, f in self.features.items() if f["dtype"] == "video"]
        self.image_keys = [k for k, f in self.features.items() if f["dtype"] == "image"]
        if self.video_keys:
            require("av", extra="video")
        self.tasks: dict[str, int] = {}
        self.episodes: list[dict[str, Any]] = []
        self._stats: list[dict[str, dict[str, np.ndarray]]] = []
        self._frames: list[dict[str, Any]] = []
        self._total = 0
        self._started = False
        self._finalized = False

    @property
    def num_episodes(self) -> int:
        """Episodes saved so far."""
        return len(self.episodes)

    @property
    def total_frames(self) -> int:
        """Frames saved so far."""
        return self._total

    # ------------------------------------------------------------------------------------------- frames
    def add_frame(self, frame: Mapping[str, Any]) -> None:
        """Buffer one frame: a value for every feature (extra keys are refused)."""
        if self._finalized:
            raise DataError("the writer is finalized; create a new one")
        missing = [k for k in self.features if k not in frame]
        extra = [k for k in frame if k not in self.features and k not in DEFAULT_FEATURES]
        if missing or extra:
            raise DataError(f"frame is missing feature(s) {missing} / has unknown key(s) {extra}; expected "
                            f"{sorted(self.features)}")
        row: dict[str, Any] = {}
        for k, f in self.features.items():
            v = frame[k]
            if f["dtype"] == "string":
                row[k] = None if v is None else str(v)
            elif f["dtype"] == "image" and isinstance(v, (bytes, bytearray)):
                row[k] = bytes(v)
            elif f["dtype"] in ("image", "video"):
                img = np.asarray(v)
                if img.shape != tuple(f["shape"]) or img.dtype != np.uint8:
                    raise DataError(f"feature {k!r}: expected uint8 {f['shape']}, got {img.dtype} {img.shape}")
                row[k] = img
            else:
                a = np.asarray(v, dtype=np.dtype(f["dtype"])).reshape(-1)
                if a.size != int(np.prod(f["shape"])):
                    raise DataError(f"feature {k!r}: expected {f['shape']} values, got {a.size}")
                row[k] = a
        self._frames.append(row)

    def discard_episode(self) -> None:
        """Drop the buffered frames."""
        self._frames = []

    # ----------------------------------------------------------------------------------------- episodes
    def save_episode(self, task: str, extra: Mapping[str, Any] | None = None) -> int:
        """Write the buffered frames as one episode performing ``task`` and refresh the metadata.

        Args:
            task: the task string (``ds[i]["task"]`` in LeRobot).
            extra: more columns of this episode's row in ``meta/episodes`` (JSON scalars; e.g. ``{"info": "..."}``).

        Returns:
            The episode index.
        """
        if self._finalized:
            raise DataError("the writer is finalized; create a new one")
        if not self._frames:
            raise DataError("no frames to save; call add_frame() first")
        if not isinstance(task, str) or not task:
            raise DataError(f"task must be a non-empty string, got {task!r}")
        self._start()
        ep, n = len(self.episodes), len(self._frames)
        task_index = self.tasks.setdefault(task, len(self.tasks))
        c, f = file_of_episode(ep)
        meta: dict[str, Any] = {"episode_index": ep, "tasks": [task], "length": n,
                                "data/chunk_index": c, "data/file_index": f,
                                "dataset_from_index": self._total, "dataset_to_index": self._total + n}
        numeric: dict[str, np.ndarray] = {}
        pixels: dict[str, np.ndarray] = {}
        sampled: dict[str, int] = {}
        for k in self.video_keys:
            frames = [r[k] for r in self._frames]
            self._write_video(k, frames, ep)
            meta.update({f"videos/{k}/chunk_index": c, f"videos/{k}/file_index": f,
                         f"videos/{k}/from_timestamp": 0.0, f"videos/{k}/to_timestamp": n / self.fps})
            pixels[k], sampled[k] = image_sample(frames), min(n, 100)
        for k in self.image_keys:
            frames = [_decode_image(v) if isinstance(v, bytes) else v for v in (r[k] for r in self._frames)]
            pixels[k], sampled[k] = image_sample(frames), min(n, 100)
        for k, feat in self.features.items():
            if feat["dtype"] not in ("image", "video", "string"):
                numeric[k] = np.stack([r[k] for r in self._frames])
        idx = np.arange(n, dtype=np.int64)
        numeric.update({"timestamp": (idx / self.fps).astype(np.float32)[:, None], "frame_index": idx[:, None],
                        "episode_index": np.full((n, 1), ep), "index": (self._total + idx)[:, None],
                        "task_index": np.full((n, 1), task_index)})
        self._write_data(ep, task_index)
        stats = episode_stats(numeric, pixels, sampled)
        meta["meta/episodes/chunk_index"], meta["meta/episodes/file_index"] = 0, 0
        meta.update(flat_stats_columns(stats))
        meta.update(dict(extra or {}))
        self.episodes.append(meta)
        self._stats.append(stats)
        self._total += n
        self._frames = []
        self._write_meta()
        return ep

    def _start(self) -> None:
        if self._started:
            return
        if self.overwrite:
            for sub in ("meta", "data", "videos"):
                shutil.rmtree(self.root / sub, ignore_errors=True)
        self._started = True

    def _write_data(self, ep: int, task_index: int) -> None:
        pa = pyarrow()
        n, rows = len(self._frames), self._frames
        cols: dict[str, Any] = {}
        for k, f in self.features.items():
            if f["dtype"] == "video":
                continue
            if f["dtype"] == "string":
                cols[k] = pa.array([r[k] for r in rows], pa.string())
            elif f["dtype"] == "image":
                data = [r[k] if isinstance(r[k], bytes) else encode_png(r[k]) for r in rows]
                cols[k] = pa.array([{"bytes": b, "path": None} for b in data],
                                   pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
            else:
                typ = getattr(pa, _PA_TYPES[f["dtype"]])()
                vals = np.stack([r[k] for r in rows])
                cols[k] = pa.array(vals[:, 0], typ) if f["shape"] == [1] else pa.array(
                    list(vals), pa.list_(typ, int(np.prod(f["shape"]))))
        idx = np.arange(n, dtype=np.int64)
        cols["timestamp"] = pa.array((idx / self.fps).astype(np.float32))
        cols["frame_index"] = pa.array(idx)
        cols["episode_index"] = pa.array(np.full(n, ep, dtype=np.int64))
        cols["index"] = pa.array(self._total + idx)
        cols["task_index"] = pa.array(np.full(n, task_index, dtype=np.int64))
        c, f = file_of_episode(ep)
        atomic_write_bytes(self.root / DATA_PATH.format(chunk_index=c, file_index=f), parquet_bytes(pa.table(cols)))

    def _write_video(self, key: str, frames: list[np.ndarray], ep: int) -> None:
        """Encode frames as H.264 (yuv420p, every other frame a keyframe) with frame ``i`` at ``i / fps`` s."""
        av = require("av", extra="video")
        c, f = file_of_episode(ep)
        path = self.root / VIDEO_PATH.format(video_key=key, chunk_index=c, file_index=f)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        h, w = frames[0].shape[:2]
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=self.fps)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.time_base = Fraction(1, self.fps)
            stream.codec_context.gop_size = 2
            stream.codec_context.max_b_frames = 0
            stream.options = {"crf": "18", "preset": "veryfast"}
            for i, img in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
                frame.pts = i
                frame.time_base = Fraction(1, self.fps)
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        tmp.replace(path)

    def _write_meta(self) -> None:
        pa = pyarrow()
        meta = self.root / "meta"
        atomic_write_bytes(meta / "tasks.parquet", parquet_bytes(tasks_table(sorted(self.tasks, key=self.tasks.get))))
        keys = list(dict.fromkeys(k for e in self.episodes for k in e))  # extra columns may differ per episode
        atomic_write_bytes(self.root / EPISODES_PATH.format(chunk_index=0, file_index=0),
                           parquet_bytes(pa.table({k: [e.get(k) for e in self.episodes] for k in keys})))
        features = {**self.features, **DEFAULT_FEATURES}
        info = {"codebase_version": CODEBASE_VERSION, "robot_type": self.robot_type,
                "total_episodes": len(self.episodes), "total_frames": self._total, "total_tasks": len(self.tasks),
                "chunks_size": CHUNK_SIZE, "data_files_size_in_mb": DATA_FILE_MB,
                "video_files_size_in_mb": VIDEO_FILE_MB, "fps": self.fps,
                "splits": {"train": f"0:{len(self.episodes)}"}, "data_path": DATA_PATH,
                "video_path": VIDEO_PATH if self.video_keys else None, "features": features}
        atomic_write_json(meta / "stats.json", aggregate_stats(self._stats))
        atomic_write_json(meta / "info.json", info)  # last: its presence marks a complete dataset

    # ------------------------------------------------------------------------------------------ closing
    def finalize(self) -> Path | None:
        """Finish the dataset (idempotent). Unsaved frames are dropped (with a warning).

        Returns:
            The dataset root, or ``None`` when no episode was saved (then nothing was written).
        """
        if not self._finalized:
            self._finalized = True
            if self._frames:
                logger.warning("%s: %d unsaved frame(s) dropped; call save_episode() to keep them", self.root,
                               len(self._frames))
                self._frames = []
        return self.root if self.episodes else None

    def __enter__(self) -> LeRobotWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.finalize()


def write_lerobot_dataset(root: str | Path, episodes: list[tuple[str, list[dict[str, Any]]]], fps: int,
                          features: Mapping[str, Mapping[str, Any]], robot_type: str = "unknown") -> Path:
    """Write whole episodes at once: ``episodes`` is a list of ``(task, frames)``; see :class:`LeRobotWriter`.

    Raises:
        DataError: ``episodes`` is empty (a dataset without episodes is not written).
    """
    if not episodes:
        raise DataError(f"{root}: no episode to write; LeRobot cannot open a dataset without episodes")
    with LeRobotWriter(root, fps, features, robot_type) as w:
        for task, frames in episodes:
            for fr in frames:
                w.add_frame(fr)
            w.save_episode(task)
    return Path(root)
