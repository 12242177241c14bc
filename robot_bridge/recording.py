"""Record every decision in the LeRobotDataset v3.0 layout (pyarrow only), for audit and replay.

One row per decision (``fps`` = the planner rate), one episode per bridge episode::

    ROOT/meta/info.json                                   codebase_version "v3.0", fps, features, totals, paths
    ROOT/meta/tasks.parquet                               task (str), task_index (int64)
    ROOT/meta/episodes/chunk-000/file-000.parquet         episode_index, tasks, length, from/to indices, file refs
    ROOT/meta/stats.json                                  min/max/mean/std of the numeric features
    ROOT/data/chunk-000/file-{episode:03d}.parquet        the rows (one data file per episode)

Row features:

* ``observation.images.<camera>``: ``image`` feature (``{"bytes", "path"}`` struct, as LeRobot/HF ``datasets``
  store images inside parquet) holding **the exact JPEG the model received**;
* ``observation.state``: ``float32[4]`` ``ee.x, ee.y, ee.z, gripper.pos`` at capture;
* ``action``: ``float32[4]`` the first target commanded for this decision after the workspace clamp (the hold
  pose when the decision held);
* ``decision.raw_text``, ``decision.command`` (canonical JSON), ``decision.status``, ``decision.error``,
  ``decision.waypoints`` (JSON list of ``[x, y, z, gripper, label]`` after the clamp): ``string``;
* ``decision.latency_ms``: ``float32[6]`` capture, encode, request, parse, plan, total;
* ``decision.frame_age_ms``: ``float32[1]`` age of the frame when the request was sent;
* ``timestamp`` (s since the episode start), ``frame_index``, ``episode_index``, ``index``, ``task_index``.

Videos are not used (frames are stored as JPEG bytes), so no video codec is needed on the robot computer.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from dppo_embodied.errors import ConfigError, DataError
from dppo_embodied.imports import require
from dppo_embodied.robot import EE_KEYS
from robot_bridge.planner import Decision

logger = logging.getLogger(__name__)

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-000/file-000.parquet"
LATENCY_NAMES = ("capture", "encode", "request", "parse", "plan", "total")
STRING_FEATURES = ("decision.raw_text", "decision.command", "decision.status", "decision.error",
                   "decision.waypoints")


def _pa() -> Any:
    return require("pyarrow", extra="bridge")


def sent_jpeg(d: Decision, quality: int = 85, max_side: int | None = 448) -> bytes:
    """The JPEG bytes a decision sent (:attr:`Decision.jpeg`), else the frame re-encoded with these settings."""
    if d.jpeg:
        return d.jpeg
    if d.frame is None:
        return b""
    from dppo_embodied.images import encode_image

    return encode_image(d.frame.image, quality=quality, max_side=max_side)


class DecisionRecorder:
    """Writes decisions as a LeRobotDataset v3.0.

    Args:
        root: dataset folder (created; an existing dataset there is refused unless ``overwrite``).
        fps: nominal decision rate (the planner's ``rate_hz``).
        camera: camera name (``observation.images.<camera>``).
        image_shape: ``(H, W, 3)`` of the recorded frames.
        robot_type: ``robot_type`` of ``meta/info.json``.
        overwrite: replace an existing dataset.
    """

    def __init__(self, root: str | Path, fps: float, camera: str = "front", image_shape: tuple[int, int, int] = (
            224, 224, 3), robot_type: str = "unknown", overwrite: bool = False) -> None:
        _pa()
        self.root = Path(root)
        if (self.root / "meta" / "info.json").exists() and not overwrite:
            raise ConfigError(f"{self.root} already holds a dataset; choose another --record folder")
        self.fps, self.camera, self.robot_type = float(fps), camera, robot_type
        self.image_key = f"observation.images.{camera}"
        self.image_shape = tuple(int(v) for v in image_shape)
        self.tasks: dict[str, int] = {}
        self.episodes: list[dict[str, Any]] = []
        self._rows: list[dict[str, Any]] = []
        self._task_index = 0
        self._t0 = 0.0
        self._total = 0
        self._numeric: dict[str, list[np.ndarray]] = {"observation.state": [], "action": [],
                                                      "decision.latency_ms": []}
        self._open = False

    # --------------------------------------------------------------------------------------------- schema
    def features(self) -> dict[str, dict[str, Any]]:
        """The ``features`` block of ``meta/info.json``."""
        feats: dict[str, dict[str, Any]] = {
            self.image_key: {"dtype": "image", "shape": list(self.image_shape),
                             "names": ["height", "width", "channels"]},
            "observation.state": {"dtype": "float32", "shape": [4], "names": list(EE_KEYS)},
            "action": {"dtype": "float32", "shape": [4], "names": list(EE_KEYS)},
            "decision.latency_ms": {"dtype": "float32", "shape": [len(LATENCY_NAMES)], "names": list(LATENCY_NAMES)},
            "decision.frame_age_ms": {"dtype": "float32", "shape": [1], "names": None},
        }
        for k in STRING_FEATURES:
            feats[k] = {"dtype": "string", "shape": [1], "names": None}
        for k in ("frame_index", "episode_index", "index", "task_index"):
            feats[k] = {"dtype": "int64", "shape": [1], "names": None}
        feats["timestamp"] = {"dtype": "float32", "shape": [1], "names": None}
        return feats

    def _schema(self) -> Any:
        pa = _pa()
        img = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
        fields = [(self.image_key, img), ("observation.state", pa.list_(pa.float32(), 4)),
                  ("action", pa.list_(pa.float32(), 4)),
                  ("decision.latency_ms", pa.list_(pa.float32(), len(LATENCY_NAMES))),
                  ("decision.frame_age_ms", pa.float32())]
        fields += [(k, pa.string()) for k in STRING_FEATURES]
        fields += [("timestamp", pa.float32())] + [(k, pa.int64()) for k in
                                                   ("frame_index", "episode_index", "index", "task_index")]
        return pa.schema(fields)

    # ------------------------------------------------------------------------------------------- episodes
    def start_episode(self, task: str) -> int:
        """Begin an episode for ``task``; returns its index."""
        if self._open:
            self.end_episode()
        self._task_index = self.tasks.setdefault(task, len(self.tasks))
        self._rows = []
        self._t0 = math.nan
        self._open = True
        return len(self.episodes)

    def add(self, d: Decision, action: list[float] | None = None) -> None:
        """Append one decision (call from the planner's ``on_decision``).

        Args:
            d: the decision.
            action: the clamped first command; default: the first waypoint, else the capture state (hold).
        """
        if not self._open:
            raise DataError("DecisionRecorder.add() before start_episode(); call start_episode(task) first")
        state = d.state.to_list() if d.state is not None else [math.nan] * 4
        if action is None:
            action = d.waypoints[0].pose.to_list() if d.waypoints else list(state)
        if math.isnan(self._t0):
            self._t0 = d.t_obs
        jpeg = sent_jpeg(d) if d.frame is not None else b""
        lat = [float(d.timings_ms.get(k, math.nan)) for k in LATENCY_NAMES]
        wps = [[*w.pose.to_list(), w.label] for w in d.waypoints]
        age = (d.timings_ms.get("capture", 0.0) + d.timings_ms.get("encode", 0.0)) if d.frame is not None else math.nan
        row = {
            self.image_key: {"bytes": jpeg, "path": None},
            "observation.state": [float(v) for v in state],
            "action": [float(v) for v in action],
            "decision.latency_ms": lat,
            "decision.frame_age_ms": float(age),
            "decision.raw_text": d.raw_text,
            "decision.command": d.command_json,
            "decision.status": d.status,
            "decision.error": d.error,
            "decision.waypoints": json.dumps(wps),
            "timestamp": float(max(0.0, d.t_obs - self._t0)) if d.t_obs else 0.0,
            "frame_index": len(self._rows),
            "episode_index": len(self.episodes),
            "index": self._total + len(self._rows),
            "task_index": self._task_index,
        }
        self._rows.append(row)
        for k in self._numeric:
            self._numeric[k].append(np.asarray(row[k], dtype=np.float64))

    def end_episode(self, **info: Any) -> None:
        """Write the episode's data file and refresh the metadata (``info`` goes into the episode row as JSON)."""
        if not self._open:
            return
        pa = _pa()
        import pyarrow.parquet as pq

        ep = len(self.episodes)
        path = self.root / DATA_PATH.format(chunk_index=ep // CHUNKS_SIZE, file_index=ep % CHUNKS_SIZE)
        path.parent.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pylist(self._rows, schema=self._schema())
        pq.write_table(table, path)
        task = next(t for t, i in self.tasks.items() if i == self._task_index)
        self.episodes.append({
            "episode_index": ep, "tasks": [task], "length": len(self._rows),
            "data/chunk_index": ep // CHUNKS_SIZE, "data/file_index": ep % CHUNKS_SIZE,
            "dataset_from_index": self._total, "dataset_to_index": self._total + len(self._rows),
            "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0,
            "info": json.dumps(info, default=str),
        })
        self._total += len(self._rows)
        self._rows = []
        self._open = False
        self._write_meta()

    def close(self, **info: Any) -> None:
        """End the open episode (if any) and finish the metadata."""
        if self._open:
            self.end_episode(**info)
        elif not (self.root / "meta" / "info.json").exists():
            self._write_meta()

    def __enter__(self) -> DecisionRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write_meta(self) -> None:
        pa = _pa()
        import pyarrow.parquet as pq

        meta = self.root / "meta"
        (meta / "episodes" / "chunk-000").mkdir(parents=True, exist_ok=True)
        info = {
            "codebase_version": CODEBASE_VERSION, "robot_type": self.robot_type,
            "total_episodes": len(self.episodes), "total_frames": self._total, "total_tasks": len(self.tasks),
            "chunks_size": CHUNKS_SIZE, "data_files_size_in_mb": 100, "video_files_size_in_mb": 200,
            "fps": self.fps, "splits": {"train": f"0:{len(self.episodes)}"},
            "data_path": DATA_PATH, "video_path": VIDEO_PATH, "features": self.features(),
        }
        (meta / "info.json").write_text(json.dumps(info, indent=2))
        tasks = sorted(self.tasks.items(), key=lambda kv: kv[1])
        pq.write_table(pa.table({"task": [t for t, _ in tasks], "task_index": pa.array([i for _, i in tasks],
                                                                                       pa.int64())}),
                       meta / "tasks.parquet")
        pq.write_table(pa.Table.from_pylist(self.episodes) if self.episodes else pa.table(
            {"episode_index": pa.array([], pa.int64())}), self.root / EPISODES_PATH)
        stats: dict[str, Any] = {}
        for k, rows in self._numeric.items():
            if rows:
                a = np.stack(rows)
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (decisions that held)
                    stats[k] = {"min": np.nanmin(a, 0).tolist(), "max": np.nanmax(a, 0).tolist(),
                                "mean": np.nanmean(a, 0).tolist(), "std": np.nanstd(a, 0).tolist(),
                                "count": [len(rows)]}
        (meta / "stats.json").write_text(json.dumps(stats, indent=2))
