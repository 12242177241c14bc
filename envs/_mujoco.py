"""Import MuJoCo headless: set ``MUJOCO_GL=egl`` (and friends) *before* the first ``import mujoco``.

Every module of :mod:`envs` that needs MuJoCo imports it through :func:`mujoco_module`, so ``import envs`` alone
never loads MuJoCo and a missing install raises :class:`~dppo_embodied.errors.DependencyNotInstalled` naming the
``sim`` extra.
"""

from __future__ import annotations

import os
from types import ModuleType

from dppo_embodied.imports import require

_HEADLESS = {"MUJOCO_GL": "egl", "PYOPENGL_PLATFORM": "egl", "MESA_SHADER_CACHE_DISABLE": "true"}


def mujoco_module() -> ModuleType:
    """Return the ``mujoco`` module, imported with a headless GL backend (EGL unless the user chose another)."""
    for k, v in _HEADLESS.items():
        os.environ.setdefault(k, v)
    if os.environ.get("MUJOCO_GL") == "egl":
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    return require("mujoco", extra="sim")
