"""Record every decision as a LeRobotDataset v3.0 with the core writer (:mod:`dppo_embodied.lerobot_writer`).

One row per decision, one episode per bridge episode; ``fps`` is the planner rate rounded to an integer (at least
1; LeRobot stores an int), and ``timestamp = frame_index / fps`` is the nominal decision time, while
``decision.elapsed_s`` keeps the wall-clock capture time since the episode started. LeRobot's own
``LeRobotDataset`` loads the result (``ds[i]["task"]`` is the instruction).

Row features:

* ``observation.images.<camera>``: ``image`` feature holding **the exact JPEG the model received**;
* ``observation.state``: ``float32[4]`` ``ee.x, ee.y, ee.z, gripper.pos`` at capture;
* ``action``: ``float32[4]`` the first target commanded for this decision after the workspace clamp (the hold
  pose when the decision held);
* ``decision.raw_text``, ``decision.command`` (canonical JSON), ``decision.status``, ``decision.error``,
  ``decision.waypoints`` (JSON list of ``[x, y, z, gripper, label]`` after the clamp): ``string``;
* ``decision.latency_ms``: ``float32[6]`` capture, encode, request, parse, plan, total;
* ``decision.frame_age_ms``: ``float32[1]`` age of the frame when the request was sent;
* ``decision.elapsed_s``: ``float32[1]`` capture time since the episode's first decision (wall clock);
* ``timestamp``, ``frame_index``, ``episode_index``, ``index``, ``task_index``.

Each episode's data file and the metadata are written when the episode ends; a run that ends no episode with a
decision leaves nothing behind. No video codec is needed on the robot computer (frames are stored as JPEG bytes).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from dppo_embodied.errors import ConfigError, DataError
from dppo_embodied.lerobot_writer import LeRobotWriter
from dppo_embodied.robot import EE_KEYS
from robot_bridge.planner import Decision

logger = logging.getLogger(__name__)

LATENCY_NAMES = ("capture", "encode", "request", "parse", "plan", "total")
STRING_FEATURES = ("decision.raw_text", "decision.command", "decision.status", "decision.error",
                   "decision.waypoints")


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
        root: dataset folder (created with the first recorded episode; an existing dataset there is refused unless
            ``overwrite``).
        fps: nominal decision rate (the planner's ``rate_hz``), rounded to an integer >= 1.
        camera: camera name (``observation.images.<camera>``).
        image_shape: ``(H, W, 3)`` of the recorded frames.
        robot_type: ``robot_type`` of ``meta/info.json``.
        overwrite: replace an existing dataset.
    """

    def __init__(self, root: str | Path, fps: float, camera: str = "front", image_shape: tuple[int, int, int] = (
            224, 224, 3), robot_type: str = "unknown", overwrite: bool = False) -> None:
        if not math.isfinite(fps) or fps <= 0:
            raise ConfigError(f"recording fps must be a positive rate, got {fps!r}")
        self.fps = max(1, round(fps))
        if self.fps != fps:
            logger.warning("recording at fps=%d (LeRobot stores an integer; the planner rate is %g Hz): timestamps "
                           "are frame_index / %d, wall-clock times are in decision.elapsed_s", self.fps, fps, self.fps)
        self.root, self.camera, self.robot_type = Path(root), camera, robot_type
        self.image_key = f"observation.images.{camera}"
        self.image_shape = tuple(int(v) for v in image_shape)
        self.writer = LeRobotWriter(self.root, self.fps, self.features(), robot_type=robot_type, overwrite=overwrite)
        self._task = ""
        self._t0 = math.nan
        self._open = False

    @property
    def episodes(self) -> list[dict[str, Any]]:
        """The rows of the episodes table written so far."""
        return self.writer.episodes

    # --------------------------------------------------------------------------------------------- schema
    def features(self) -> dict[str, dict[str, Any]]:
        """The recorded features (``meta/info.json`` adds the default columns)."""
        feats: dict[str, dict[str, Any]] = {
            self.image_key: {"dtype": "image", "shape": list(self.image_shape),
                             "names": ["height", "width", "channels"]},
            "observation.state": {"dtype": "float32", "shape": [4], "names": list(EE_KEYS)},
            "action": {"dtype": "float32", "shape": [4], "names": list(EE_KEYS)},
            "decision.latency_ms": {"dtype": "float32", "shape": [len(LATENCY_NAMES)], "names": list(LATENCY_NAMES)},
            "decision.frame_age_ms": {"dtype": "float32", "shape": [1], "names": None},
            "decision.elapsed_s": {"dtype": "float32", "shape": [1], "names": None},
        }
        for k in STRING_FEATURES:
            feats[k] = {"dtype": "string", "shape": [1], "names": None}
        return feats

    # ------------------------------------------------------------------------------------------- episodes
    def start_episode(self, task: str) -> int:
        """Begin an episode for ``task``; returns its index."""
        if self._open:
            self.end_episode()
        self.writer.discard_episode()
        self._task, self._t0, self._open = task, math.nan, True
        return self.writer.num_episodes

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
        if math.isnan(self._t0) and d.t_obs:
            self._t0 = d.t_obs
        jpeg = sent_jpeg(d) if d.frame is not None else b""
        age = (d.timings_ms.get("capture", 0.0) + d.timings_ms.get("encode", 0.0)) if d.frame is not None else math.nan
        self.writer.add_frame({
            self.image_key: jpeg or _blank_jpeg(self.image_shape),
            "observation.state": [float(v) for v in state],
            "action": [float(v) for v in action],
            "decision.latency_ms": [float(d.timings_ms.get(k, math.nan)) for k in LATENCY_NAMES],
            "decision.frame_age_ms": float(age),
            "decision.elapsed_s": float(max(0.0, d.t_obs - self._t0)) if d.t_obs else math.nan,
            "decision.raw_text": d.raw_text,
            "decision.command": d.command_json,
            "decision.status": d.status,
            "decision.error": d.error,
            "decision.waypoints": json.dumps([[*w.pose.to_list(), w.label] for w in d.waypoints]),
        })

    def end_episode(self, **info: Any) -> None:
        """Write the episode (its data file and the refreshed metadata); ``info`` goes into its episodes-table row
        as JSON. An episode without a decision is not written."""
        if not self._open:
            return
        self._open = False
        try:
            self.writer.save_episode(self._task, extra={"info": json.dumps(info, default=str)})
        except DataError as e:
            if "no frames" not in str(e):
                raise
            logger.info("episode %r recorded no decision; not written", self._task)

    def close(self, **info: Any) -> None:
        """End the open episode (if any) and finish the dataset (nothing is left when no episode was written)."""
        if self._open:
            self.end_episode(**info)
        self.writer.finalize()

    def __enter__(self) -> DecisionRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _blank_jpeg(shape: tuple[int, ...]) -> bytes:
    """A black frame for a decision that captured none (a stale camera), so every row has an image."""
    from dppo_embodied.images import encode_image

    return encode_image(np.zeros(shape, dtype=np.uint8))
