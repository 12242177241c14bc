"""Typed dataclass configuration from YAML with command-line overrides.

``load_config(MyConfig, "recipe.yaml", ["rl.lr=1e-5", "name=run2"])`` builds ``MyConfig`` from the file, applies
the ``key.sub=value`` overrides (values parsed as YAML scalars), and checks every key and type: an unknown key or a
wrong type raises :class:`~dppo_embodied.errors.ConfigError` naming the dotted key and the file. Validation that
involves several fields belongs in the dataclass's ``__post_init__``.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from dppo_embodied.errors import ConfigError, did_you_mean

C = TypeVar("C")


def check(cond: bool, key: str, msg: str) -> None:
    """Validation step of a config's ``__post_init__``: raise a :class:`ConfigError` naming ``key`` unless ``cond``.

    >>> check(2 > 1, "loops", "must be >= 1")
    """
    if not cond:
        raise ConfigError(f"{key}: {msg}")


def _where(source: str | None) -> str:
    return f" in {source}" if source else ""


def _convert(value: Any, tp: Any, key: str, source: str | None) -> Any:
    """Check/convert ``value`` against the annotation ``tp``."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(value, a, key, source)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"{key}{_where(source)}: {value!r} does not match {_type_name(tp)}")
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(f"{key}{_where(source)}: {value!r} is not one of {list(get_args(tp))}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{key}{_where(source)}: expected a mapping for {tp.__name__}, got {value!r}")
        return from_dict(tp, value, source=source, prefix=key + ".")
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError as e:
            raise ConfigError(
                f"{key}{_where(source)}: {value!r} is not one of {[m.value for m in tp]}"
            ) from e
    if origin in (list, tuple, typing.Sequence) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}{_where(source)}: expected a list, got {value!r}")
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{key}{_where(source)}: expected {len(args)} items, got {len(value)}")
            pairs = enumerate(zip(value, args, strict=True))
            return tuple(_convert(v, a, f"{key}[{i}]", source) for i, (v, a) in pairs)
        item = args[0] if args else Any
        out = [_convert(v, item, f"{key}[{i}]", source) for i, v in enumerate(value)]
        return tuple(out) if origin is tuple or tp is tuple else out
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}{_where(source)}: expected a mapping, got {value!r}")
        args = get_args(tp)
        vt = args[1] if len(args) == 2 else Any
        return {k: _convert(v, vt, f"{key}.{k}", source) for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}{_where(source)}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}{_where(source)}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-5" as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}{_where(source)}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}{_where(source)}: expected a string, got {value!r}")
    if tp is Path:
        if isinstance(value, (str, os.PathLike)):
            return Path(value)
        raise ConfigError(f"{key}{_where(source)}: expected a path, got {value!r}")
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise ConfigError(f"{key}{_where(source)}: expected {tp.__name__}, got {value!r}")
    return value


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def from_dict(cls: type[C], data: dict[str, Any], source: str | None = None, prefix: str = "") -> C:
    """Build dataclass ``cls`` from a mapping, checking keys and types recursively."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}{_where(source)}: expected a mapping, got {type(data).__name__}")
    hints = get_type_hints(cls)
    flds = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(flds))
    if unknown:
        raise ConfigError(
            f"unknown key {prefix + unknown[0]!r}{did_you_mean(unknown[0], flds)}{_where(source)}; valid keys: "
            f"{', '.join(sorted(flds))}"
        )
    kwargs = {name: _convert(v, hints[name], prefix + name, source) for name, v in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError as e:
        raise ConfigError(f"{e}{_where(source)}" if source and source not in str(e) else str(e)) from e
    except TypeError as e:  # missing required fields
        raise ConfigError(f"{prefix or cls.__name__}{_where(source)}: {e}") from e


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain dict of a config dataclass (enums → values, paths → strings) that :func:`from_dict` reads back."""

    def conv(v: Any) -> Any:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, enum.Enum):
            return v.value
        if isinstance(v, Path):
            return str(v)
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        return v

    return conv(cfg)


def apply_overrides(data: dict[str, Any], overrides: list[str], source: str = "command line") -> dict[str, Any]:
    """Apply ``["a.b=1", "name=x"]`` to a nested dict (values parsed as YAML scalars)."""
    for ov in overrides:
        key, sep, raw = ov.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {ov!r} from the {source} must look like key=value (e.g. rl.lr=1e-5)")
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        node = data
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {ov!r}: {p!r} is not a section")
        node[parts[-1]] = value
    return data


def load_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML mapping, with errors that name the file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: invalid YAML: {e}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the top level must be a mapping of keys, got {type(data).__name__}")
    return data


def load_config(
    cls: type[C], path: str | os.PathLike[str] | None = None, overrides: list[str] | None = None
) -> C:
    """Build ``cls`` from an optional YAML file plus ``key=value`` overrides."""
    data = load_yaml(path) if path else {}
    source = str(path) if path else "command line"
    if overrides:
        data = apply_overrides(data, overrides)
        source = f"{path} (with overrides {overrides})" if path else "command line"
    return from_dict(cls, data, source=source)


def save_config(cfg: Any, path: str | os.PathLike[str]) -> None:
    """Write a config dataclass as YAML (readable back with :func:`load_config`)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False), encoding="utf-8")
