"""The LeRobotDataset v3.0 layout shared by the reader (:mod:`envs.lerobot_dataset`) and the writer
(:mod:`envs.lerobot_writer`): codebase version, path templates, file sizes and the per-frame default columns."""

from __future__ import annotations

from typing import Any

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
