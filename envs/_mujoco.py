"""Import MuJoCo headless: set ``MUJOCO_GL=egl`` (and friends) *before* the first ``import mujoco``.

Every module of :mod:`envs` that needs MuJoCo imports it through :func:`mujoco_module`, so ``import envs`` alone
never loads MuJoCo and a missing install raises :class:`~dppo_embodied.errors.DependencyNotInstalled` naming the
``sim`` extra.
"""

from __future__ import annotations

import os
import sys
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


def release_gl() -> None:
    """Leave no GL context current in the calling thread (EGL; other backends need nothing).

    An EGL context is current in at most one thread at a time, and MuJoCo's renderer makes its context current on
    every render and leaves it so: rendering with it or freeing it from any other thread then fails with
    ``EGL_BAD_ACCESS``, even after the first thread has ended. :class:`envs.scene.TabletopScene` calls this after
    each use of its renderer, so the next user may be any thread (an episode worker, an env pool's next borrower,
    the garbage collector).
    """
    egl = sys.modules.get("mujoco.egl")  # imported by MuJoCo's renderer when MUJOCO_GL=egl
    if egl is None or getattr(egl, "EGL_DISPLAY", None) is None:
        return
    lib = egl.EGL
    lib.eglMakeCurrent(egl.EGL_DISPLAY, lib.EGL_NO_SURFACE, lib.EGL_NO_SURFACE, lib.EGL_NO_CONTEXT)
