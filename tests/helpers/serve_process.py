"""``dppo serve`` as a child process for end-to-end tests: started on a free port, its URL read from its start-up
line, stopped with SIGTERM (then SIGKILL) on the way out."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ServeProcess:
    """A running ``dppo serve``: ``url`` ends with ``/v1``; ``banner`` is its start-up line; ``returncode`` is set on
    leaving the context (``None`` when it had to be killed)."""

    url: str
    banner: str
    proc: subprocess.Popen[str]
    returncode: int | None = None


def _read_lines(stream: Any, q: queue.Queue[str]) -> None:
    for line in stream:
        q.put(line)


def wait_for_banner(proc: subprocess.Popen[str], startup_s: float) -> tuple[str | None, list[str]]:
    """Read ``proc``'s output until ``dppo serve`` prints its address line: ``(that line or None, lines seen)``.
    ``None`` when the process exits or ``startup_s`` passes first."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True).start()
    t_end, seen = time.monotonic() + startup_s, []
    while time.monotonic() < t_end and proc.poll() is None:
        try:
            line = lines.get(timeout=1.0)
        except queue.Empty:
            continue
        seen.append(line)
        if line.startswith("dppo serve:") and "http://" in line:
            return line, seen
    return None, seen


@contextmanager
def dppo_serve(args: Sequence[str], env: Mapping[str, str], startup_s: float = 120.0) -> Iterator[ServeProcess]:
    """Run ``python -m dppo_embodied.cli serve *args`` (pass ``--port 0``) until the context ends.

    Raises:
        AssertionError: it printed no URL within ``startup_s`` (the message holds what it printed).
    """
    proc = subprocess.Popen([sys.executable, "-m", "dppo_embodied.cli", "serve", *args], cwd=ROOT, env=dict(env),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    served: ServeProcess | None = None
    try:
        banner, seen = wait_for_banner(proc, startup_s)
        assert banner is not None, f"dppo serve {' '.join(args)} did not start:\n" + "".join(seen)
        served = ServeProcess(banner.split(" on ", 1)[1].split(" ", 1)[0], banner, proc)
        yield served
    finally:
        rc: int | None = proc.poll()
        if rc is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                rc = proc.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(5)
        if served is not None:
            served.returncode = rc
