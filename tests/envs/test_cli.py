"""``dppo data`` end to end and the ``dppo list`` catalogues."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dppo_embodied.cli import main as dppo
from dppo_embodied.types import load_samples


def test_data_generate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = dppo(["data", "generate", "--suite", "tabletop-qa", "--n", "4", "--out", str(tmp_path), "--seed", "2",
               "--capabilities", "spatial_geometric", "temporal_sequential", "--difficulty", "n_objects=[3,4]",
               "--difficulty", "clip_s=2", "--no-progress"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["samples"] == 4 and summary["by_capability"] == {"spatial_geometric": 2, "temporal_sequential": 2}
    samples, _ = load_samples(tmp_path / "samples.jsonl")
    assert len(samples) == 4 and all(Path(p).is_file() for s in samples for p in s.images)


def test_data_errors_and_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert dppo(["data", "generate", "--n", "1", "--out", str(tmp_path), "--difficulty", "speed=3"]) == 2
    assert "clip_s" in capsys.readouterr().err
    assert dppo(["data", "generate", "--suite", "nope", "--n", "1", "--out", str(tmp_path)]) == 2
    assert dppo(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "tabletop-qa" in out and "dppo/TabletopStack-v0" in out and "tower_plan" in out
    assert dppo(["list", "envs"]) == 0 and "dppo/TabletopPick-v0" in capsys.readouterr().out
    assert dppo(["list", "qa-suites"]) == 0 and "replay" in capsys.readouterr().out


def test_import_envs_stays_light() -> None:
    import subprocess
    import sys

    code = "import sys, envs; print('mujoco' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_generate_into_a_used_folder_is_refused_or_replaced(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "qa"
    assert dppo(["data", "generate", "--n", "2", "--out", str(out), "--no-progress"]) == 0
    stale = out / "media" / "stale_from_an_earlier_run.png"
    stale.write_bytes(b"x")
    capsys.readouterr()
    assert dppo(["data", "generate", "--n", "2", "--out", str(out), "--no-progress"]) == 2
    assert "pass --overwrite" in capsys.readouterr().err and stale.exists()
    assert dppo(["data", "generate", "--n", "3", "--out", str(out), "--seed", "1", "--no-progress",
                 "--overwrite"]) == 0
    assert not stale.exists()
    lines = (out / "samples.jsonl").read_text().splitlines()
    assert len(lines) == 3
    referenced = {Path(p).name for line in lines for p in json.loads(line)["images"]}
    assert {p.name for p in (out / "media").iterdir()} >= referenced
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    assert dppo(["data", "generate", "--n", "1", "--out", str(tmp_path / "mine"), "--overwrite"]) == 2
    assert (tmp_path / "mine" / "notes.txt").exists()
