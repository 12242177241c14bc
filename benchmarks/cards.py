"""Dataset cards: which files hold which split, read from a Hugging Face dataset README the way ``datasets`` does.

A dataset repository's ``README.md`` starts with YAML front matter whose ``configs:`` list names the configs, each
with ``data_files`` (split -> path or glob, relative to the repository root) and optionally ``default: true``::

    configs:
      - config_name: data_for_llms_eval
        data_files:
          - split: phyx_mini_mc
            path: data_llms_eval/PhyX_mini_MC.parquet

:func:`card_for` reads that card from a snapshot folder (``hf download ... --local-dir DIR``); when
the folder has no README with ``configs:``, it uses the card a task declares (``card:`` in its YAML, the published
card's ``configs:`` block verbatim), and failing that it infers the splits from the file names with the default
patterns of ``datasets`` (``data/<split>-00000-of-00001.parquet``, then a split keyword in a folder or file name,
then everything as ``train``). :meth:`Card.files` resolves one split like ``datasets.load_dataset(DIR, name=...,
split=...)`` does: a plain path must exist, a glob (``*``, ``**``, ``[...]``) matches files in sorted order, hidden
files and ``README.md`` are skipped. Nothing here imports ``datasets``; ``tests/benchmarks/test_cards.py`` checks
the resolution against it.

Every problem is a :class:`DatasetLayoutError` naming the folder, the card and what it says: an unknown config,
a split the config does not list, a listed file that is absent, a glob that matches nothing.
"""

from __future__ import annotations

import glob
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dppo_embodied.errors import DataError

logger = logging.getLogger(__name__)

README = "README.md"
#: Files ``datasets`` never treats as data (``data_files.FILES_TO_IGNORE``).
FILES_TO_IGNORE = ("README.md", "config.json", "dataset_info.json", "dataset_infos.json", "dummy_data.zip",
                   "dataset_dict.json")
DEFAULT_SPLIT = "train"
#: ``datasets`` split keywords and the characters allowed around them in inferred file and folder names.
SPLIT_KEYWORDS = {"train": ("train", "training"), "validation": ("validation", "valid", "dev", "val"),
                  "test": ("test", "testing", "eval", "evaluation")}
_SEP = "-._ 0-9"
_SHARDED = "data/*-[0-9][0-9][0-9][0-9][0-9]-of-[0-9][0-9][0-9][0-9][0-9]*.*"
_SHARDED_RE = re.compile(r"^(?P<split>.+?)-\d{5}-of-\d{5}")
_SPLIT_NAME_RE = re.compile(r"^\w+(\.\w+)*$")


class DatasetLayoutError(DataError):
    """The dataset folder is missing or not laid out as its card says. The message names the file and the card."""


@dataclass(frozen=True)
class CardConfig:
    """One entry of a card's ``configs:`` list.

    Attributes:
        name: ``config_name`` (``"default"`` when absent).
        data_files: split -> path patterns, in the card's order.
        default: ``default: true`` in the card.
        data_dir: the config's ``data_dir`` (patterns are relative to it), ``""`` for the repository root.
    """

    name: str
    data_files: dict[str, tuple[str, ...]]
    default: bool = False
    data_dir: str = ""


@dataclass(frozen=True)
class Card:
    """The configs of a dataset and where they were read from (``source``: the README path, the task YAML, or
    "inferred from the file names")."""

    configs: tuple[CardConfig, ...]
    source: str
    root: Path = field(default_factory=Path)

    def names(self) -> list[str]:
        """Config names, in the card's order."""
        return [c.name for c in self.configs]

    def config(self, name: str | None = None) -> CardConfig:
        """The config called ``name``; with ``None``, the default one (as ``datasets`` picks it: the only config,
        the one called ``default``, or the one marked ``default: true``)."""
        if name is not None:
            for c in self.configs:
                if c.name == name:
                    return c
            raise DatasetLayoutError(f"{self.root}: the dataset card ({self.source}) has no config {name!r}; it lists "
                                     f"{', '.join(self.names()) or 'none'}")
        chosen = [c for c in self.configs if len(self.configs) == 1 or c.name == "default" or c.default]
        if len(chosen) == 1:
            return chosen[0]
        raise DatasetLayoutError(f"{self.root}: the dataset card ({self.source}) has "
                                 f"{'several default configs' if chosen else 'no default config'}; name one of "
                                 f"{', '.join(self.names())}")

    def files(self, config: str | None, split: str) -> list[Path]:
        """The data files of one split, resolved like ``datasets`` (see the module docstring).

        Raises:
            DatasetLayoutError: unknown config or split, a listed path that is absent, or no file at all.
        """
        cfg = self.config(config)
        if split not in cfg.data_files:
            raise DatasetLayoutError(f"{self.root}: config {cfg.name!r} of the dataset card ({self.source}) has no "
                                     f"split {split!r}; it lists {', '.join(cfg.data_files) or 'none'}")
        base = self.root / cfg.data_dir if cfg.data_dir else self.root
        patterns = cfg.data_files[split]
        out: list[Path] = []
        for pattern in patterns:
            if not any(ch in pattern for ch in "*[]"):
                path = base / pattern
                if not path.is_file():
                    raise DatasetLayoutError(
                        f"{path} is missing: the dataset card ({self.source}) lists {pattern!r} for split {split!r} "
                        f"of config {cfg.name!r}; download the complete snapshot (hf download ... "
                        f"--repo-type dataset --local-dir {self.root})")
                out.append(path)
                continue
            out += resolve_glob(base, pattern)
        if not out:
            raise DatasetLayoutError(
                f"{base}: no file matches {list(patterns)}, which the dataset card ({self.source}) lists for split "
                f"{split!r} of config {cfg.name!r}; download the complete snapshot into {self.root}")
        return out


def resolve_glob(base: Path, pattern: str) -> list[Path]:
    """Files under ``base`` matching ``pattern`` (``*`` within a name, ``**`` across folders), sorted, without
    hidden files or ``README.md`` and friends, as ``datasets.data_files.resolve_pattern`` on a local folder."""
    ignore = set(FILES_TO_IGNORE) - {Path(pattern).name}
    found = glob.glob(pattern, root_dir=base, recursive=True)
    # a trailing "**" also yields folders as "name/": only files count
    return [base / p for p in sorted(found)
            if not p.endswith(("/", os.sep)) and (base / p).is_file() and Path(p).name not in ignore]


# ------------------------------------------------------------------------------------------------- parsing
def front_matter(text: str, source: str) -> dict[str, Any]:
    """The YAML front matter of a README (``{}`` when it has none)."""
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != "---":
        return {}
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        raise DatasetLayoutError(f"{source}: the YAML front matter opened by '---' is never closed") from None
    try:
        meta = yaml.safe_load("\n".join(lines[1:end])) or {}
    except yaml.YAMLError as e:
        raise DatasetLayoutError(f"{source}: the card's YAML front matter does not parse: {e}") from e
    if not isinstance(meta, dict):
        raise DatasetLayoutError(f"{source}: the card's YAML front matter is not a mapping")
    return meta


def _patterns(data_files: Any, where: str) -> dict[str, tuple[str, ...]]:
    """``datasets.data_files.sanitize_patterns``: str, list of str, list of {split, path} or {split: paths}."""
    def paths(value: Any) -> tuple[str, ...]:
        items = value if isinstance(value, list) else [value]
        if not items or not all(isinstance(p, str) and p for p in items):
            raise DatasetLayoutError(f"{where}: data_files paths must be non-empty strings, got {value!r}")
        return tuple(items)

    if isinstance(data_files, str):
        return {DEFAULT_SPLIT: (data_files,)}
    if isinstance(data_files, dict):
        return {str(k): paths(v) for k, v in data_files.items()}
    if isinstance(data_files, list):
        if not any(isinstance(p, dict) for p in data_files):
            return {DEFAULT_SPLIT: paths(data_files)}
        out: dict[str, tuple[str, ...]] = {}
        for entry in data_files:
            if not (isinstance(entry, dict) and set(entry) == {"split", "path"}):
                raise DatasetLayoutError(f"{where}: each data_files entry must be {{split: ..., path: ...}}, got "
                                         f"{entry!r}")
            if str(entry["split"]) in out:
                raise DatasetLayoutError(f"{where}: split {entry['split']!r} is listed twice")
            out[str(entry["split"])] = paths(entry["path"])
        return out
    raise DatasetLayoutError(f"{where}: data_files must be a path, a list or a mapping, got "
                             f"{type(data_files).__name__}")


def parse_configs(configs: Any, source: str, root: Path) -> Card:
    """A :class:`Card` from a ``configs:`` list (README front matter or a task YAML's ``card:``).

    A config without ``data_files`` gets its splits inferred from the file names under its ``data_dir``.
    """
    if not isinstance(configs, list) or not configs:
        raise DatasetLayoutError(f"{source}: 'configs' must be a non-empty list")
    out: list[CardConfig] = []
    for entry in configs:
        if not isinstance(entry, dict):
            raise DatasetLayoutError(f"{source}: each config must be a mapping, got {entry!r}")
        name = str(entry.get("config_name", "default"))
        where = f"{source}: config {name!r}"
        data_dir = str(entry.get("data_dir") or "")
        if "data_files" in entry:
            files = _patterns(entry["data_files"], where)
        else:
            files = infer_patterns(root / data_dir if data_dir else root, where)
        if name in {c.name for c in out}:
            raise DatasetLayoutError(f"{source}: config {name!r} is listed twice")
        out.append(CardConfig(name, files, bool(entry.get("default", False)), data_dir))
    return Card(tuple(out), source, root)


def infer_patterns(base: Path, where: str) -> dict[str, tuple[str, ...]]:
    """The split patterns ``datasets`` infers from the file names under ``base`` when no card lists them
    (``data_files._get_data_files_patterns`` with fsspec >= 2023.12)."""
    sharded = resolve_glob(base, _SHARDED)
    if sharded:
        splits = []
        for p in sharded:
            m = _SHARDED_RE.match(p.name)
            if m and m["split"] not in splits:
                splits.append(m["split"])
        bad = [s for s in splits if not _SPLIT_NAME_RE.match(s)]
        if bad:
            raise DatasetLayoutError(f"{where}: split names {bad} in {base / 'data'} are not valid split names")
        order = [s for s in SPLIT_KEYWORDS if s in splits] + sorted(s for s in splits if s not in SPLIT_KEYWORDS)
        return {s: (_SHARDED.replace("*-[0-9]", f"{s}-[0-9]", 1),) for s in order}
    dir_forms = ("**/{k}/**", "**/{k}[{s}]*/**", "**/*[{s}]{k}/**", "**/*[{s}]{k}[{s}]*/**")
    name_forms = ("**/{k}[{s}]*", "**/*[{s}]{k}[{s}]*")
    for forms in (dir_forms, name_forms):
        found = {split: tuple(f.format(k=k, s=_SEP) for k in kws for f in forms)
                 for split, kws in SPLIT_KEYWORDS.items()}
        hit = {s: pats for s, pats in found.items() if any(resolve_glob(base, p) for p in pats)}
        if hit:
            # datasets keeps, per split, the first pattern that matched and resolves all of that split's patterns
            return hit
    return {DEFAULT_SPLIT: ("**",)}


def read_card(root: Path) -> Card | None:
    """The card of a snapshot folder: its README's ``configs:``, or ``None`` when there is none."""
    path = root / README
    if not path.is_file():
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetLayoutError(f"{path}: cannot read the dataset card: {e}") from e
    meta = front_matter(text, str(path))
    if "configs" not in meta:
        return None
    return parse_configs(meta["configs"], str(path), root)


def card_for(root: Path, builtin: list[dict[str, Any]] | None = None, builtin_source: str = "") -> Card:
    """The card that decides ``root``'s layout: the README's ``configs:``, else the task's declared card
    (``builtin``, named ``builtin_source``), else the splits inferred from the file names."""
    card = read_card(root)
    if card is not None:
        return card
    if builtin:
        return parse_configs(builtin, builtin_source or "the task's card", root)
    return Card((CardConfig("default", infer_patterns(root, str(root))),), "inferred from the file names", root)
