"""--resume continues with the run's own config.yaml: a differing recipe or override is refused with the differences
or applied only with --override-config (the previous file kept); config.yaml is never silently overwritten."""

from __future__ import annotations

from pathlib import Path

import pytest

from dppo_embodied.config import save_config
from dppo_embodied.errors import ConfigError
from training.metaloop_config import load_metaloop_config
from training.scripts.run import main, resolve_config

ROOT = Path(__file__).resolve().parents[2]
DEMO = str(ROOT / "training" / "recipes" / "demo.yaml")


def _started_run(tmp_path: Path) -> Path:
    out = tmp_path / "run"
    cfg = load_metaloop_config(DEMO, ["loops=1", "sft.synthesize_n=32"], str(out))
    save_config(cfg, out / "config.yaml")
    return out


def test_resume_uses_the_runs_own_config(tmp_path: Path) -> None:
    out = _started_run(tmp_path)
    before = (out / "config.yaml").read_text()
    cfg = resolve_config(None, [], str(out), resume=True)
    assert (cfg.loops, cfg.sft.synthesize_n) == (1, 32)
    cfg = resolve_config(DEMO, ["loops=1", "sft.synthesize_n=32"], str(out), resume=True)  # the same: fine
    assert cfg.loops == 1
    assert (out / "config.yaml").read_text() == before


def test_resume_refuses_a_different_recipe_with_the_differences(tmp_path: Path) -> None:
    out = _started_run(tmp_path)
    before = (out / "config.yaml").read_text()
    with pytest.raises(ConfigError) as e:
        resolve_config(DEMO, [], str(out), resume=True)  # the recipe without the run's overrides
    msg = str(e.value)
    assert "loops: 1 (the run's config.yaml) -> 3" in msg
    assert "sft.synthesize_n: 32 (the run's config.yaml) -> 512" in msg
    assert "--override-config" in msg and "output_dir" not in msg
    assert (out / "config.yaml").read_text() == before


def test_override_config_applies_and_keeps_the_previous_file(tmp_path: Path) -> None:
    out = _started_run(tmp_path)
    before = (out / "config.yaml").read_text()
    cfg = resolve_config(None, ["loops=2"], str(out), resume=True, override_config=True)
    assert cfg.loops == 2 and cfg.sft.synthesize_n == 32  # only the override changes
    assert (out / "config.prev-1.yaml").read_text() == before
    assert load_metaloop_config(out / "config.yaml", [], str(out)).loops == 2


def test_resume_without_a_run_and_new_run_without_recipe_are_one_line_errors(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--output-dir", str(tmp_path / "none"), "--resume"]) == 1
    assert "holds no run to resume" in capsys.readouterr().err
    assert main(["--output-dir", str(tmp_path / "x")]) == 1
    assert "--config RECIPE is required" in capsys.readouterr().err
