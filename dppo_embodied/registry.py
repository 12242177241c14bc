"""Catalogues of named things (env ids, tasks, robots, cameras, backends), loaded lazily by ``"module:attr"``.

Registration is explicit (no import side effects decide what exists) and lookup of an unknown name raises
:class:`~dppo_embodied.errors.UnknownNameError` listing the valid choices.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

from dppo_embodied.errors import DppoError, UnknownNameError

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
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._specs: dict[str, str] = {}
        self._help: dict[str, str] = {}
        self._loaded: dict[str, T] = {}

    def register(self, name: str, entry_point: str, help: str = "", overwrite: bool = False) -> None:
        """Register ``name`` → ``"module:attr"``; re-registering a different target needs ``overwrite=True``."""
        if name in self._specs and self._specs[name] != entry_point and not overwrite:
            raise DppoError(f"{self.kind} {name!r} is already registered to {self._specs[name]!r}")
        self._specs[name] = entry_point
        self._help[name] = help
        self._loaded.pop(name, None)

    def get(self, name: str) -> T:
        """Load (once) and return what ``name`` points to."""
        if name not in self._specs:
            raise UnknownNameError(self.kind, name, self._specs)
        if name not in self._loaded:
            self._loaded[name] = load_entry_point(self._specs[name])
        return self._loaded[name]

    def help(self, name: str) -> str:
        """The one-line help given at registration."""
        if name not in self._specs:
            raise UnknownNameError(self.kind, name, self._specs)
        return self._help[name]

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._specs)
