"""A run's own configuration: ``<run>/config.yaml`` is written once when the run starts and is what ``--resume``
continues with. A different recipe or override on ``--resume`` is refused with the differences (or applied only
with ``--override-config``, the previous file kept as ``config.prev-<n>.yaml``); the file is never silently
overwritten.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml

from dppo_embodied.io import atomic_write_text

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.yaml"
#: keys that may differ between a run and its resume (where the run lives is not part of what it does)
LOCATION_KEYS = ("output_dir",)


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists stay values)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, f"{key}."))
        else:
            out[key] = v
    return out


def config_diff(saved: dict[str, Any], asked: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(dotted key, run's value, asked value)`` for every setting that differs (location keys ignored)."""
    a, b = flatten(saved), flatten(asked)
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b))
            if a.get(k) != b.get(k) and k not in LOCATION_KEYS]


def describe_diff(diff: list[tuple[str, Any, Any]]) -> str:
    """One line per difference: ``key: <run> (the run's config.yaml) -> <asked>``."""
    return "\n".join(f"  {k}: {v0!r} (the run's config.yaml) -> {v1!r}" for k, v0, v1 in diff)


def replace_config(out: Path, data: dict[str, Any]) -> Path:
    """Write ``data`` as the run's config.yaml, keeping the previous one as ``config.prev-<n>.yaml``."""
    path = out / CONFIG_FILE
    if path.is_file():
        n = 1
        while (out / f"config.prev-{n}.yaml").exists():
            n += 1
        backup = out / f"config.prev-{n}.yaml"
        path.replace(backup)
        logger.info("the previous config.yaml is kept as %s", backup)
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))
    return path
