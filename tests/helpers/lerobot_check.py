"""Load a dataset with LeRobot's own ``LeRobotDataset`` and dump what it returns (no dppo import).

Run in LeRobot's interpreter by tests/core/test_lerobot_compat.py: ``python lerobot_check.py ROOT OUT``; writes
``OUT.json`` (version, fps, per-frame task/timestamp/indices) and ``OUT.npz`` (camera tensors and the
``delta_timestamps`` queries: action at -1/fps, 0, +1/fps and each video at -1/fps, 0, with their padding flags).
"""

from __future__ import annotations

import importlib.metadata
import json
import sys

import numpy as np
from lerobot.datasets.lerobot_dataset import LeRobotDataset


def main(root: str, out: str) -> None:
    plain = LeRobotDataset("local/dppo", root=root)
    fps = plain.fps
    dt = 1.0 / fps
    delta = {"action": [-dt, 0.0, dt], **{k: [-dt, 0.0] for k in plain.meta.video_keys}}
    shifted = LeRobotDataset("local/dppo", root=root, delta_timestamps=delta)
    items, arrays = [], {}
    for i in range(len(plain)):
        it = plain[i]
        items.append({"task": it["task"], "timestamp": float(it["timestamp"]), "frame_index": int(it["frame_index"]),
                      "episode_index": int(it["episode_index"]), "index": int(it["index"])})
        for k in plain.meta.camera_keys:
            arrays[f"{i}|{k}"] = it[k].numpy()
        d = shifted[i]
        for k in delta:
            arrays[f"{i}|delta|{k}"] = d[k].numpy()
            arrays[f"{i}|delta|{k}_is_pad"] = d[f"{k}_is_pad"].numpy()
    np.savez(out + ".npz", **arrays)
    report = {"lerobot": importlib.metadata.version("lerobot"), "fps": fps, "fps_type": type(fps).__name__,
              "num_episodes": plain.num_episodes, "num_frames": plain.num_frames,
              "camera_keys": list(plain.meta.camera_keys), "video_keys": list(plain.meta.video_keys),
              "stats_keys": sorted(plain.meta.stats or {}), "items": items}
    with open(out + ".json", "w", encoding="utf-8") as f:
        json.dump(report, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
