"""Catalogues of named things (env ids, tasks, robots, cameras, backends), loaded lazily by ``"module:attr"``.

Registration is explicit (no import side effects decide what exists) and lookup of an unknown name raises
:class:`~dppo_embodied.errors.UnknownNameError` listing the valid choices. A package registers what it owns by
``"module:attr"`` strings pointing inside itself; what another distribution or package provides comes in as a
plugin declared by its provider in an entry-point group (``[project.entry-points."dppo_embodied.robots"]``), so the
registering package names no module of the provider.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

from dppo_embodied.errors import DependencyNotInstalled, DppoError, UnknownNameError

T = TypeVar("T")


def load_entry_point(spec: str) -> Any:
    """Import ``"package.module:attr"`` and return the attribute."""
    module, _, attr = spec.partition(":")
    if not module or not attr:
        raise DppoError(f"entry point {spec!r} must look like 'package.module:attr'")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


class Registry(Generic[T]):
    """Name → entry point string, resolved on first use.

    >>> r: Registry[object] = Registry("robot")
    >>> r.register("dict", "builtins:dict", help="a plain dict")
    >>> r.get("dict") is dict
    True

    Args:
        kind: what the catalogue holds (error messages).
        plugins: optional entry-point group whose entries are registered on first use (installed plugins).
    """

    def __init__(self, kind: str, plugins: str | None = None) -> None:
        self.kind = kind
        self.plugins = plugins
        self._specs: dict[str, str] = {}
        self._help: dict[str, str] = {}
        self._loaded: dict[str, T] = {}
        self._expected: dict[str, tuple[str, str]] = {}
        self._discovered = plugins is None

    def expect(self, name: str, extra: str, help: str = "") -> None:
        """Declare a plugin ``name`` that the ``extra`` of dppo-embodied provides: its help when it is installed,
        and a :class:`DependencyNotInstalled` naming the extra when it is not (instead of an unknown name)."""
        self._expected[name] = (extra, help)

    def _discover(self) -> None:
        """Register the entries of the plugin group once (names registered explicitly win)."""
        if self._discovered:
            return
        self._discovered = True
        from importlib.metadata import entry_points

        for ep in entry_points(group=str(self.plugins)):
            if ep.name not in self._specs:
                help_ = self._expected.get(ep.name, ("", ""))[1] or f"plugin {ep.value}"
                self.register(ep.name, ep.value, help=help_)

    def _missing(self, name: str) -> DppoError:
        if name in self._expected:
            extra = self._expected[name][0]
            return DependencyNotInstalled(f"{self.kind} {name}", extra,
                                          detail=f"no {self.plugins!r} entry point named {name!r} is installed")
        return UnknownNameError(self.kind, name, self._specs)

    def register(self, name: str, entry_point: str, help: str = "", overwrite: bool = False) -> None:
        """Register ``name`` → ``"module:attr"``; re-registering a different target needs ``overwrite=True``."""
        if name in self._specs and self._specs[name] != entry_point and not overwrite:
            raise DppoError(f"{self.kind} {name!r} is already registered to {self._specs[name]!r}")
        self._specs[name] = entry_point
        self._help[name] = help
        self._loaded.pop(name, None)

    def get(self, name: str) -> T:
        """Load (once) and return what ``name`` points to.

        Raises:
            UnknownNameError: ``name`` is not registered (lists the valid ones).
            DependencyNotInstalled: ``name`` is an expected plugin that is not installed (names the extra).
        """
        self._discover()
        if name not in self._specs:
            raise self._missing(name)
        if name not in self._loaded:
            self._loaded[name] = load_entry_point(self._specs[name])
        return self._loaded[name]

    def help(self, name: str) -> str:
        """The one-line help given at registration."""
        self._discover()
        if name not in self._specs:
            raise self._missing(name)
        return self._help[name]

    def names(self) -> list[str]:
        """Registered names (installed plugins included), sorted."""
        self._discover()
        return sorted(self._specs)

    def __contains__(self, name: object) -> bool:
        self._discover()
        return name in self._specs

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._discover()
        return len(self._specs)
