"""The `dppo` command: fast lazy help, version, unknown commands, python -m entry points."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dppo_embodied import __version__
from dppo_embodied.cli import COMMANDS

PY = sys.executable


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=60)


def test_help_lists_commands_without_torch() -> None:
    r = _run(
        "import sys\nfrom dppo_embodied.cli import main\nrc = main(['--help'])\n"
        "heavy = [m for m in ('torch', 'transformers', 'trl', 'mujoco') if m in sys.modules]\n"
        "print('HEAVY', heavy)\nsys.exit(rc)"
    )
    assert r.returncode == 0, r.stderr
    for name in COMMANDS:
        assert name in r.stdout
    assert "HEAVY []" in r.stdout


def test_every_registered_command_has_help_without_torch_where_torch_free() -> None:
    # bridge and list must never load torch, even when they run
    for name in [n for n in ("list", "bridge") if n in COMMANDS]:
        r = _run(
            "import sys\nfrom dppo_embodied.cli import main\n"
            f"try:\n    main(['{name}', '--help'])\nexcept SystemExit:\n    pass\n"
            "print('TORCH', 'torch' in sys.modules)"
        )
        assert "TORCH False" in r.stdout, (name, r.stdout, r.stderr)


def test_version_and_unknown_command() -> None:
    r = subprocess.run([PY, "-m", "dppo_embodied.cli", "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and __version__ in r.stdout
    r = subprocess.run([PY, "-m", "dppo_embodied.cli", "fly"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "unknown command 'fly'" in r.stderr
    for name in COMMANDS:
        assert name in r.stderr


def _train_subcommands() -> list[str]:
    from training.cli import SUBCOMMANDS

    return sorted(m for m, _ in SUBCOMMANDS.values())


@pytest.mark.parametrize("module", sorted({m for m, _ in COMMANDS.values()}) + _train_subcommands())
def test_subcommand_modules_run_with_python_m(module: str) -> None:
    r = subprocess.run([PY, "-m", module, "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "usage" in (r.stdout + r.stderr).lower()


def test_list_prints_the_taxonomy() -> None:
    r = subprocess.run([PY, "-m", "dppo_embodied.listing", "capabilities"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0
    assert "decision_planning" in r.stdout and "Decision & Task Planning" in r.stdout
