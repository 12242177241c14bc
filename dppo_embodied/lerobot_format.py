"""The LeRobotDataset v3.0 layout as LeRobot's own ``LeRobotDataset`` loader reads it (torch-free, no ``lerobot``).

Shared by the one writer (:mod:`dppo_embodied.lerobot_writer`, used by the bridge recorder and the envs datasets)
and the reader (:mod:`envs.lerobot_dataset`). What the loader expects (checked against LeRobot 0.4.4)::

    meta/info.json                                    codebase_version "v3.0", integer fps, totals, path templates,
                                                      features {dtype, shape, names[, info]}
    meta/stats.json                                   per feature: min, max, mean, std, count, q01, q10, q50, q90,
                                                      q99 (images/videos per channel, shape (3, 1, 1), in [0, 1])
    meta/tasks.parquet                                a pandas frame indexed by the task string (index "task"),
                                                      column task_index; row i is task i
    meta/episodes/chunk-000/file-000.parquet          one row per episode: episode_index, tasks, length,
                                                      dataset_from_index, dataset_to_index, data/*, videos/<key>/*,
                                                      meta/episodes/*, stats/<feature>/<stat>
    data/chunk-{chunk:03d}/file-{file:03d}.parquet    frames: features + timestamp (= frame_index / fps),
                                                      frame_index, episode_index, index, task_index
    videos/<key>/chunk-{chunk:03d}/file-{file:03d}.mp4

``image`` features live inside the data parquet as ``{"bytes", "path"}`` structs (what Hugging Face ``datasets``
decodes as an ``Image``); ``string`` features as strings (no stats, as in LeRobot).
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from dppo_embodied.errors import ConfigError, DataError
from dppo_embodied.imports import require

__all__ = [
    "CHUNK_SIZE", "CODEBASE_VERSION", "DATA_FILE_MB", "DATA_PATH", "DEFAULT_FEATURES", "EPISODES_PATH", "NUMERIC",
    "QUANTILES", "VIDEO_FILE_MB", "VIDEO_PATH", "aggregate_stats", "check_features", "episode_stats",
    "file_of_episode", "image_sample", "tasks_table",
]

CODEBASE_VERSION = "v3.0"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
CHUNK_SIZE = 1000
DATA_FILE_MB = 100
VIDEO_FILE_MB = 200
QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}
"""LeRobot's ``DEFAULT_QUANTILES`` with their stats keys."""
#: columns every frame carries besides the user features
DEFAULT_FEATURES: dict[str, dict[str, Any]] = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}
NUMERIC = frozenset({"float32", "float64", "int64", "int32", "int16", "int8", "uint8", "bool"})
VISUAL = frozenset({"image", "video"})
_IMAGE_STATS_FRAMES = 100  # frames sampled per episode for image stats (LeRobot samples ~100 too)
_IMAGE_STATS_SIDE = 150  # longest side the sampled frames are reduced to


def pyarrow() -> Any:
    """``pyarrow`` (with ``pyarrow.parquet`` loaded), or :class:`DependencyNotInstalled` naming the extra."""
    pa = require("pyarrow", extra="dataset")
    import pyarrow.parquet  # noqa: F401

    return pa


def check_features(features: Mapping[str, Mapping[str, Any]], fps: int) -> dict[str, dict[str, Any]]:
    """Validate user features and complete them as ``info.json`` stores them (the default columns excluded).

    Args:
        features: name -> ``{"dtype", "shape", "names"}``; dtype one of :data:`NUMERIC`, ``"string"``,
            ``"image"`` (``[H, W, 3]``, stored in the parquet) or ``"video"`` (``[H, W, 3]`` with even H and W,
            stored as H.264 MP4).
        fps: the dataset's frame rate (for the video ``info`` block).

    Raises:
        ConfigError: a dtype or shape is not supported (the message names the feature).
    """
    out: dict[str, dict[str, Any]] = {}
    for k, f in features.items():
        if k in DEFAULT_FEATURES:
            continue
        dtype = f.get("dtype")
        try:
            shape = [int(s) for s in f.get("shape") or [1]]
        except (TypeError, ValueError) as e:
            raise ConfigError(f"feature {k!r}: shape must be a list of integers, got {f.get('shape')!r}") from e
        names = f.get("names")
        if dtype in VISUAL:
            if len(shape) != 3 or shape[2] != 3:
                raise ConfigError(f"{dtype} feature {k!r} needs shape [H, W, 3], got {shape}")
            if dtype == "video" and (shape[0] % 2 or shape[1] % 2):
                raise ConfigError(f"video feature {k!r} needs an even height and width (yuv420p), got {shape}")
            names = names or ["height", "width", "channels"]
        elif dtype not in NUMERIC and dtype != "string":
            raise ConfigError(f"feature {k!r}: dtype {dtype!r} not supported; use video, image, string or one of "
                              f"{sorted(NUMERIC)}")
        entry: dict[str, Any] = {"dtype": dtype, "shape": shape, "names": names}
        if dtype == "video":
            entry["info"] = {"video.height": shape[0], "video.width": shape[1], "video.codec": "h264",
                             "video.pix_fmt": "yuv420p", "video.is_depth_map": False, "video.fps": fps,
                             "video.channels": 3, "has_audio": False}
        out[k] = entry
    return out


def file_of_episode(episode_index: int) -> tuple[int, int]:
    """``(chunk_index, file_index)`` of an episode's data and video files (one file per episode, 1,000 per chunk)."""
    return divmod(int(episode_index), CHUNK_SIZE)


# ------------------------------------------------------------------------------------------------------ stats
def _numeric_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """Stats over axis 0 of ``values`` ``(N, D)`` (float64)."""
    s = {"min": values.min(0), "max": values.max(0), "mean": values.mean(0), "std": values.std(0),
         "count": np.array([values.shape[0]])}
    qs = np.quantile(values, list(QUANTILES.values()), axis=0)
    s.update({k: qs[i] for i, k in enumerate(QUANTILES)})
    return s


def image_sample(frames: Sequence[np.ndarray]) -> np.ndarray:
    """Pixels of up to 100 evenly spaced frames, each reduced to a longest side <= 150 by striding, as
    ``(P, 3)`` float64 in ``[0, 1]`` (what the per-channel image stats are computed on)."""
    if not frames:
        return np.zeros((0, 3))
    idx = np.unique(np.linspace(0, len(frames) - 1, min(len(frames), _IMAGE_STATS_FRAMES)).astype(int))
    parts = []
    for i in idx:
        img = np.asarray(frames[int(i)])
        step = max(1, -(-max(img.shape[:2]) // _IMAGE_STATS_SIDE))
        parts.append(img[::step, ::step, :3].reshape(-1, 3))
    return np.concatenate(parts).astype(np.float64) / 255.0


def episode_stats(numeric: Mapping[str, np.ndarray], images: Mapping[str, np.ndarray],
                  frames_sampled: Mapping[str, int]) -> dict[str, dict[str, np.ndarray]]:
    """One episode's stats per feature, as LeRobot computes them.

    Args:
        numeric: feature -> ``(T, D)`` values (NaNs, e.g. a held decision's missing state, are left out).
        images: feature -> ``(P, 3)`` pixels in ``[0, 1]`` from :func:`image_sample`.
        frames_sampled: feature -> number of frames the pixels came from (the image ``count``).
    """
    out: dict[str, dict[str, np.ndarray]] = {}
    for k, v in numeric.items():
        v = np.asarray(v, dtype=np.float64).reshape(len(v), -1)
        finite = v[np.isfinite(v).all(axis=1)]
        if len(finite):
            out[k] = _numeric_stats(finite)
    for k, px in images.items():
        if len(px):
            s = _numeric_stats(px)
            out[k] = {n: a if n == "count" else a.reshape(3, 1, 1) for n, a in s.items()}
            out[k]["count"] = np.array([int(frames_sampled.get(k, 0))])
    return out


def aggregate_stats(per_episode: Sequence[Mapping[str, Mapping[str, np.ndarray]]]) -> dict[str, dict[str, Any]]:
    """Dataset stats from per-episode stats, LeRobot's way: exact min/max/count, count-weighted mean and pooled
    variance, count-weighted mean of each quantile. Returns JSON-ready lists."""
    out: dict[str, dict[str, Any]] = {}
    keys = sorted({k for ep in per_episode for k in ep})
    for k in keys:
        parts = [ep[k] for ep in per_episode if k in ep]
        counts = np.array([float(p["count"][0]) for p in parts])
        w = counts / counts.sum()
        shape = np.asarray(parts[0]["mean"]).shape
        wb = w.reshape((-1,) + (1,) * len(shape))
        means = np.stack([np.asarray(p["mean"]) for p in parts])
        mean = (means * wb).sum(0)
        var = ((np.stack([np.asarray(p["std"]) for p in parts]) ** 2 + (means - mean) ** 2) * wb).sum(0)
        s = {"min": np.min([p["min"] for p in parts], axis=0), "max": np.max([p["max"] for p in parts], axis=0),
             "mean": mean, "std": np.sqrt(var), "count": np.array([int(counts.sum())])}
        for q in QUANTILES:
            s[q] = (np.stack([np.asarray(p[q]) for p in parts]) * wb).sum(0)
        out[k] = {n: np.asarray(a).tolist() for n, a in s.items()}
    return out


def flat_stats_columns(stats: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, Any]:
    """The ``stats/<feature>/<stat>`` columns of an episodes-table row."""
    return {f"stats/{k}/{n}": np.asarray(a).tolist() for k, s in stats.items() for n, a in s.items()}


# ---------------------------------------------------------------------------------------------------- tables
def tasks_table(tasks: Sequence[str]) -> Any:
    """``meta/tasks.parquet`` as LeRobot writes it with pandas: a frame indexed by the task string (index name
    ``task``), column ``task_index``; row ``i`` holds task ``i``. Built with pyarrow (no pandas needed)."""
    pa = pyarrow()
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "task": pa.array(list(tasks),
                                                                                             pa.string())})
    pandas_meta = {"index_columns": ["task"], "column_indexes": [{"name": None, "field_name": None,
                                                                  "pandas_type": "unicode", "numpy_type": "object",
                                                                  "metadata": {"encoding": "UTF-8"}}],
                   "columns": [{"name": "task_index", "field_name": "task_index", "pandas_type": "int64",
                                "numpy_type": "int64", "metadata": None},
                               {"name": "task", "field_name": "task", "pandas_type": "unicode",
                                "numpy_type": "object", "metadata": None}],
                   "creator": {"library": "pyarrow", "version": pa.__version__}, "pandas_version": "2.2.0"}
    return table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})


def read_tasks(table: Any, source: str) -> list[str]:
    """Task strings by task index from a ``meta/tasks.parquet`` table (ours, LeRobot's, or an older plain
    ``task`` column)."""
    d = table.to_pydict()
    name_col = "task" if "task" in d else next((c for c in d if c.startswith("__index_level")), None)
    if name_col is None or "task_index" not in d:
        raise DataError(f"{source} has no task / task_index columns")
    tasks = [""] * len(d["task_index"])
    for name, idx in zip(d[name_col], d["task_index"], strict=True):
        if not 0 <= int(idx) < len(tasks):
            raise DataError(f"{source}: task_index {idx} out of range")
        tasks[int(idx)] = str(name)
    return tasks


def parquet_bytes(table: Any) -> bytes:
    """A pyarrow table as parquet file bytes (for atomic writes)."""
    pa = pyarrow()
    buf = io.BytesIO()
    pa.parquet.write_table(table, buf)
    return buf.getvalue()
