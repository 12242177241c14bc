"""A --model that looks like a path and does not exist is a one-line error naming the nearest checkpoints, never a
Hugging Face id (no hub retries, no traceback), in every command that loads a model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dppo_embodied.errors import ConfigError
from dppo_embodied.model_ref import check_model_ref, is_hub_id, looks_like_path

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("ref", "path"), [("./ckpt", True), ("/x/y", True), ("~/m", True), ("a/b/c", True),
                                           ("ckpt/", True), ("Qwen/Qwen2.5-VL-7B-Instruct", False)])
def test_what_looks_like_a_path(ref: str, path: bool) -> None:
    assert looks_like_path(ref) is path
    assert is_hub_id(ref) is (not path)


def _ckpt(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    return folder


def test_missing_folder_suggests_the_nearest_checkpoint(tmp_path: Path) -> None:
    good = _ckpt(tmp_path / "run" / "ckpt" / "k3-sft")
    _ckpt(tmp_path / "run" / "ckpt" / "k3-rl")
    with pytest.raises(ConfigError) as e:
        check_model_ref(str(tmp_path / "run" / "ckpt" / "k3-sfy"))
    msg = str(e.value)
    assert "no such checkpoint folder" in msg and f"did you mean {good}" in msg and "\n" not in msg
    check_model_ref(str(good))  # a checkpoint folder passes
    with pytest.raises(ConfigError, match="holds no checkpoint"):
        check_model_ref(str(tmp_path / "run"))
    with pytest.raises(ConfigError, match="no such checkpoint folder"):
        check_model_ref("ckpt_typo")  # one word that is no folder is not a hub id either
    check_model_ref("Qwen/Qwen2.5-VL-7B-Instruct")  # a hub id passes (loaded later)


def test_a_local_first_part_makes_it_a_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "outputs").mkdir()
    assert looks_like_path("outputs/run1") and not is_hub_id("outputs/run1")


@pytest.mark.parametrize("argv", [
    ["serve", "--model", "./no/such/ckpt", "--port", "0"],
    ["eval", "run", "--model", "./no/such/ckpt", "--backend", "hf", "--tasks", "pusht", "--out", "OUT"],
])
def test_commands_refuse_a_missing_checkpoint_in_one_line_without_torch(argv: list[str], tmp_path: Path) -> None:
    code = ("import sys\nfrom dppo_embodied.cli import main\nrc = main(sys.argv[1:])\n"
            "print('TORCH', 'torch' in sys.modules)\nsys.exit(rc)")
    argv = [a.replace("OUT", str(tmp_path / "out")) for a in argv]
    r = subprocess.run([sys.executable, "-c", code, *argv], cwd=tmp_path, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode in (1, 2), r.stderr
    assert "./no/such/ckpt: no such checkpoint folder" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "TORCH False" in r.stdout
