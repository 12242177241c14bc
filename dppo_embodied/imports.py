"""Optional-dependency guard: ``require("mujoco", extra="sim")`` imports or raises a fix-it error."""

from __future__ import annotations

import importlib
from types import ModuleType

from dppo_embodied.errors import DependencyNotInstalled


def require(module: str, extra: str, package: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`DependencyNotInstalled` naming the extra that installs it.

    Args:
        module: import name, e.g. ``"mujoco"``.
        extra: the dppo-embodied extra that provides it, e.g. ``"sim"``.
        package: the pip distribution name when it differs from ``module``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise DependencyNotInstalled(package or module, extra, detail=str(e)) from e


def is_available(module: str) -> bool:
    """True when ``module`` can be imported (without importing it when its spec says it is absent)."""
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
