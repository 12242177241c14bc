"""What a ``--model`` value refers to: a local checkpoint folder or a Hugging Face hub id, decided before anything
heavy is imported.

A value that looks like a path (``./x``, ``/x``, ``~/x``, ``a/b/c``, ``x/`` or ``ckpt/k1`` whose first part is a
local folder) and does not exist is never taken for a hub id: it is a one-line :class:`ConfigError` that lists the
closest checkpoints next to it ("did you mean ..."), not half a minute of hub retries and a traceback.

Torch-free.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

__all__ = ["check_model_ref", "is_hub_id", "looks_like_path"]

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
#: the files that make a folder a checkpoint
CONFIG_FILE = "config.json"


def looks_like_path(ref: str) -> bool:
    """True for a value that can only be a path (see the module docstring)."""
    if ref.startswith((".", "/", "~")) or ref.endswith(("/", os.sep)) or "\\" in ref or ref.count("/") > 1:
        return True
    head = ref.split("/", 1)[0]
    return "/" in ref and Path(head).is_dir()


def is_hub_id(ref: str) -> bool:
    """True for ``org/name`` that is not a local path."""
    return bool(_HUB_ID.match(ref)) and not looks_like_path(ref) and not Path(ref).exists()


def _nearby(path: Path) -> list[str]:
    """Checkpoint folders (with a config.json) near ``path``, closest names first."""
    parent = path.parent if str(path.parent) else Path(".")
    while not parent.is_dir() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return []
    found: list[Path] = []
    try:
        for d in sorted(parent.iterdir()):
            if d.is_dir() and (d / CONFIG_FILE).is_file():
                found.append(d)
            elif d.is_dir():  # one level down: run folders hold ckpt/<step>, base_model
                found += [c for c in sorted(d.iterdir())[:50] if c.is_dir() and (c / CONFIG_FILE).is_file()]
    except OSError:
        return []
    names = {str(f): f.name for f in found}
    close = difflib.get_close_matches(path.name, list(names.values()), n=3, cutoff=0.4)
    ranked = [p for n in close for p, m in names.items() if m == n]
    return list(dict.fromkeys(ranked + list(names)))[:3]


def check_model_ref(ref: str, flag: str = "--model") -> None:
    """Refuse a ``--model`` value that is neither a checkpoint folder nor a hub id, with what to do.

    Raises:
        ConfigError: a path that does not exist (with the nearest checkpoints), or a folder without config.json.
    """
    from dppo_embodied.errors import ConfigError

    path = Path(ref).expanduser()
    if path.is_dir():
        if not (path / CONFIG_FILE).is_file():
            near = _nearby(path / "x")
            hint = f"; checkpoints inside: {', '.join(near)}" if near else ""
            raise ConfigError(f"{flag} {ref}: the folder holds no checkpoint ({CONFIG_FILE} missing){hint}. Build "
                              f"the tiny one with 'dppo train build-tiny --out {ref}' or pass a checkpoint folder")
        return
    if path.exists():
        raise ConfigError(f"{flag} {ref} is a file; pass the checkpoint's folder")
    if is_hub_id(ref):
        return
    near = _nearby(path)
    hint = f"; did you mean {' or '.join(near)}?" if near else ""
    raise ConfigError(f"{flag} {ref}: no such checkpoint folder{hint} (a path that does not exist is not taken for "
                      "a Hugging Face id; hub ids look like Qwen/Qwen2.5-VL-7B-Instruct)")
