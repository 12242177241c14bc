"""Where a result came from: package versions, the git commit, the command line, start/end and duration.

:func:`environment` is recorded in every ``results.json`` (``dppo eval``) and ``summary.json`` (``dppo train``);
:func:`timing` gives ``started``/``ended`` (ISO 8601, UTC) and ``duration_s``. Versions are read from the installed
distributions' metadata (nothing heavy is imported); the commit is the git checkout's the package runs from, if
any (``dirty`` when it has uncommitted changes).

Torch-free.
"""

from __future__ import annotations

import platform
import shlex
import subprocess
import sys
import time
from datetime import datetime, timezone
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["PACKAGES", "environment", "git_commit", "iso", "timing", "versions"]

#: distributions whose versions are recorded (those installed)
PACKAGES = ("dppo-embodied", "torch", "transformers", "trl", "accelerate", "peft", "datasets", "vllm", "mujoco",
            "gymnasium", "openai", "numpy", "pillow", "av", "pyarrow")


def versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """``{distribution: version}`` of the installed ones, plus ``python``."""
    out = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


@lru_cache(maxsize=1)
def git_commit() -> dict[str, Any] | None:
    """``{"commit": sha, "dirty": bool}`` of the checkout this package runs from, or ``None`` (not a checkout, no
    git)."""
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return None
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10).stdout.strip()
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": sha, "dirty": bool(status)} if sha else None


def command_line(argv: list[str] | None = None) -> str:
    """The command line of this process, shell-quoted (``dppo`` for the console script)."""
    args = list(sys.argv if argv is None else argv)
    if args and Path(args[0]).name in ("dppo", "cli.py"):
        args[0] = "dppo"
    return shlex.join(args)


def environment() -> dict[str, Any]:
    """Versions, git commit, command line, host platform: what made a result."""
    return {"versions": versions(), "git": git_commit(), "command": command_line(),
            "platform": f"{platform.system()} {platform.machine()}"}


def iso(t: float) -> str:
    """A ``time.time()`` as ISO 8601 UTC, to the second."""
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")


def timing(started: float, ended: float | None = None) -> dict[str, Any]:
    """``{"started", "ended", "duration_s"}`` from ``time.time()`` values (``ended``: now)."""
    end = time.time() if ended is None else ended
    return {"started": iso(started), "ended": iso(end), "duration_s": round(end - started, 3)}
