"""``dppo bridge`` command line: torch-free help, flag/YAML/override parsing, argument errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dppo_embodied.errors import ConfigError
from robot_bridge.cli import config_from_args, main, make_parser

ROOT = Path(__file__).resolve().parents[2]


def parse(argv: list[str]) -> object:
    return config_from_args(vars(make_parser().parse_args(argv)))


def test_help_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from dppo_embodied.cli import main\n"
        "try:\n    main(['bridge', '--help'])\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'transformers', 'trl', 'accelerate', 'mujoco', 'envs', 'training'))\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "--robot" in out.stdout and "--dry-run" in out.stdout and "e-stop" in out.stdout
    assert "HEAVY []" in out.stdout


def test_record_overwrite_and_request_timeout_default() -> None:
    cfg = parse(["--record", "runs/deploy", "--overwrite"])
    assert cfg.record == "runs/deploy" and cfg.record_overwrite is True  # type: ignore[attr-defined]
    cfg = parse(["--record", "runs/deploy"])
    assert cfg.record_overwrite is False  # type: ignore[attr-defined]
    assert cfg.planner.request_timeout_s == 10.0  # type: ignore[attr-defined]
    assert "(default 10)" in make_parser().format_help()


def test_flags_map_to_config() -> None:
    cfg = parse(["--robot", "so101", "--robot-arg", "port=/dev/ttyACM0", "--robot-arg", "id=7", "--camera",
                 "opencv:0", "--server", "http://10.0.0.2:8000/v1", "--task", "Pick it.", "--dry-run",
                 "--max-steps", "5", "--record", "out", "--slow", "0.25", "--rate", "3", "--sync",
                 "--workspace=-0.2,-0.1,0.01,0.2,0.1,0.3", "--estop-port", "0", "--set", "motion.hover_m=0.04",
                 "--no-skills"])
    assert cfg.robot == "so101" and cfg.robot_args == {"port": "/dev/ttyACM0", "id": 7}  # type: ignore[attr-defined]
    assert cfg.safety.dry_run and cfg.safety.slow_scale == 0.25  # type: ignore[attr-defined]
    assert cfg.safety.workspace_min == (-0.2, -0.1, 0.01)  # type: ignore[attr-defined]
    assert cfg.planner.max_steps == 5 and cfg.planner.rate_hz == 3.0 and cfg.planner.sync  # type: ignore[attr-defined]
    assert cfg.motion.hover_m == 0.04 and cfg.estop_port == 0 and not cfg.skills  # type: ignore[attr-defined]
    assert cfg.record == "out" and cfg.task == "Pick it."  # type: ignore[attr-defined]


def test_yaml_config_with_flag_override(tmp_path: Path) -> None:
    p = tmp_path / "bridge.yaml"
    p.write_text("robot: sim\ntask: pick red_block\nplanner:\n  rate_hz: 1.5\n  max_tokens: 64\nsafety:\n"
                 "  max_invalid: 4\n")
    cfg = parse(["--config", str(p), "--rate", "2.5"])
    assert cfg.planner.rate_hz == 2.5 and cfg.planner.max_tokens == 64  # type: ignore[attr-defined]
    assert cfg.safety.max_invalid == 4 and cfg.task == "pick red_block"  # type: ignore[attr-defined]


@pytest.mark.parametrize(("argv", "match"), [
    (["--workspace", "1,2,3"], "6 numbers"),
    (["--robot-arg", "novalue"], "key=value"),
    (["--slow", "2"], "slow_scale"),
    (["--set", "planner.nope=1"], "nope"),
])
def test_bad_arguments(argv: list[str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse(argv)


def test_main_returns_2_on_bad_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--slow", "0"]) == 2
    assert "slow_scale" in capsys.readouterr().err
