"""LeRobot's own ``LeRobotDataset`` loads what our one writer produces: an envs dataset (video, image, numeric and
string features) and a ``dppo bridge --robot sim --record`` recording.

LeRobot cannot share our environment (it pins torch < 2.11 and huggingface-hub < 0.36), so the loader runs in its
own interpreter, named by ``DPPO_LEROBOT_PYTHON`` (built as docs/envs.md "LeRobot compatibility" says); the test is
skipped without it. ``tests/helpers/lerobot_check.py`` dumps what the loader returns; the assertions compare it
with what was written, read back by our own reader.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("pyarrow")
pytest.importorskip("av")

from envs.lerobot_dataset import LeRobotDatasetV3

LEROBOT_PYTHON = os.environ.get("DPPO_LEROBOT_PYTHON", "")
pytestmark = [
    pytest.mark.slow, pytest.mark.lerobot,
    pytest.mark.skipif(not LEROBOT_PYTHON, reason="DPPO_LEROBOT_PYTHON is not set: it names the python of a venv "
                       "with lerobot==0.4.4 (see docs/envs.md, LeRobot compatibility)"),
]
CHECK = Path(__file__).resolve().parents[1] / "helpers" / "lerobot_check.py"


def lerobot_load(root: Path, tmp_path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """What LeRobot's loader returns for ``root``: the JSON report and the arrays."""
    out = tmp_path / f"check-{root.name}"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": ""}
    done = subprocess.run([LEROBOT_PYTHON, str(CHECK), str(root), str(out)], capture_output=True, text=True,
                          timeout=600, env=env, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    with np.load(f"{out}.npz") as z:
        arrays = {k: z[k] for k in z.files}
    return json.loads(Path(f"{out}.json").read_text()), arrays


def check_against_our_reader(root: Path, report: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    ours = LeRobotDatasetV3(root)
    info = json.loads((root / "meta" / "info.json").read_text())
    assert report["lerobot"] == "0.4.4"
    assert report["fps"] == info["fps"] and report["fps_type"] == "int"
    assert (report["num_episodes"], report["num_frames"]) == (ours.num_episodes, len(ours))
    assert sorted(report["camera_keys"]) == sorted(ours.image_keys + ours.video_keys)
    assert {"observation.state", "action"} <= set(report["stats_keys"])
    fps, i = info["fps"], 0
    for e in range(ours.num_episodes):
        ep = ours.episode(e)
        frames = {k: ours.frames(e, k) for k in ours.image_keys + ours.video_keys}
        for t in range(ep.length):
            item = report["items"][i]
            assert item["task"] == ep.tasks[0] and isinstance(item["task"], str)  # the string, not its index
            assert (item["episode_index"], item["frame_index"], item["index"]) == (e, t, i)
            assert item["timestamp"] == pytest.approx(t / fps, abs=1e-6)  # frame_index / fps
            for k, f in frames.items():  # (3, H, W) float in [0, 1], the pixels we wrote
                got = arrays[f"{i}|{k}"]
                assert got.shape == (3, *f.shape[1:3])
                diff = np.abs(got.transpose(1, 2, 0) * 255.0 - f[t].astype(np.float64))
                assert diff.max() <= (1.0 if k in ours.image_keys else 40.0) and diff.mean() < 3.0, (k, i)
            # delta_timestamps: LeRobot turns seconds into frame offsets with fps, padded at the episode bounds
            act, pad = arrays[f"{i}|delta|action"], arrays[f"{i}|delta|action_is_pad"]
            want = [ep.data["action"][min(max(t + d, 0), ep.length - 1)] for d in (-1, 0, 1)]
            assert np.allclose(act, np.stack(want), atol=1e-6, equal_nan=True)
            assert list(pad) == [t == 0, False, t == ep.length - 1]
            for k in ours.video_keys:
                clip, clip_pad = arrays[f"{i}|delta|{k}"], arrays[f"{i}|delta|{k}_is_pad"]
                assert clip.shape[0] == 2 and list(clip_pad) == [t == 0, False]
                assert np.abs(clip[1] - arrays[f"{i}|{k}"]).max() < 1e-6
            i += 1


def test_lerobot_loads_an_envs_dataset(tmp_path: Path) -> None:
    from dppo_embodied.lerobot_writer import write_lerobot_dataset
    from tests.envs.test_lerobot_dataset import EPISODES, FEATURES, _frame

    root = write_lerobot_dataset(tmp_path / "envs-ds", [(task, [_frame(ep, t) for t in range(n)])
                                                        for task, n, ep in EPISODES], fps=10, features=FEATURES)
    check_against_our_reader(root, *lerobot_load(root, tmp_path))


def test_lerobot_loads_a_bridge_recording(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("mujoco")
    from robot_bridge.cli import main
    from tests.helpers.fake_openai_server import FakeOpenAIServer

    root = tmp_path / "bridge-rec"
    reply = '{"action": {"type": "move", "dx_cm": 1}}'
    with FakeOpenAIServer(responder=lambda _r: reply) as srv:
        rc = main(["--robot", "sim", "--robot-arg", "image_size=64", "--model", "fake-model", "--rate", "5",
                   "--server", srv.url, "--episodes", "2", "--max-steps", "3", "--record", str(root), "--json",
                   "--no-status"])
    assert rc == 0, capsys.readouterr().err
    check_against_our_reader(root, *lerobot_load(root, tmp_path))
