"""Reading benchmark datasets from a local Hugging Face snapshot folder (or the ``datasets`` cache).

Nothing is downloaded: adapters read the files of a folder laid out exactly like the dataset's Hugging Face
repository (``hf download <id> --repo-type dataset --local-dir DIR``). When the folder is missing and
the ``datasets`` library finds the dataset in its offline cache, rows come from there instead. Otherwise a
:class:`DatasetLayoutError` names the folder it looked at and the layout it expected.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.cards import DatasetLayoutError, card_for
from benchmarks.task import TaskSpec
from dppo_embodied.errors import DataError
from dppo_embodied.io import iter_json_lines

logger = logging.getLogger(__name__)


def download_command(dataset_id: str, root: Path) -> str:
    """The command that downloads a dataset snapshot into ``root`` (``hf``, the CLI of huggingface_hub >= 1.0)."""
    return f"hf download {dataset_id} --repo-type dataset --local-dir {root}"


def layout_error(task: str, root: Path, layout: str, dataset_id: str = "", detail: str = "") -> DatasetLayoutError:
    """A :class:`DatasetLayoutError` that says where we looked, what we expected and how to get it."""
    how = f"; download it once with: {download_command(dataset_id, root)}" if dataset_id else ""
    extra = f" ({detail})" if detail else ""
    return DatasetLayoutError(f"task {task}: dataset folder {root} is missing or incomplete{extra}. Expected layout: "
                              f"{layout}{how}")


def require_dir(task: str, root: Path, layout: str, dataset_id: str = "") -> Path:
    """``root`` if it is a folder, else raise :func:`layout_error`."""
    if not root.is_dir():
        raise layout_error(task, root, layout, dataset_id, "no such folder")
    return root


# ----------------------------------------------------------------------------------------------------- readers
def read_json(path: Path) -> Any:
    """Parse a JSON file, with a :class:`DataError` naming the file on failure."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise DataError(f"{path}: cannot read JSON: {type(e).__name__}: {e}") from e


@dataclass(frozen=True)
class MalformedRow:
    """A dataset row that could not be read (a line that is not UTF-8 or not a JSON object); the adapters turn it
    into a failed sample with ``reason`` (which names the file and line)."""

    reason: str
    line: int = 0


def read_jsonl(path: Path) -> list[dict[str, Any] | MalformedRow]:
    """The rows of a JSONL file, one per non-empty line; a malformed line is a :class:`MalformedRow` in its place.

    Raises:
        DataError: the file cannot be opened.
    """
    rows: list[dict[str, Any] | MalformedRow] = []
    for lineno, value, err in iter_json_lines(path):
        if err is None and not isinstance(value, dict):
            err = f"expected a JSON object, got {type(value).__name__}"
        rows.append(value if err is None else MalformedRow(f"{path.name}:{lineno}: malformed row: {err}", lineno))
    return rows


def read_parquet(paths: list[Path]) -> list[dict[str, Any]]:
    """Rows of one or more parquet files (in order), as dicts; binary image structs stay ``{"bytes", "path"}``."""
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = []
    for p in paths:
        try:
            rows.extend(pq.read_table(p).to_pylist())
        except Exception as e:  # pyarrow raises several types for a corrupt file
            raise DataError(f"{p}: cannot read parquet: {e}") from e
    return rows


def read_tsv(path: Path, sep: str = "\t") -> list[dict[str, Any]]:
    """Rows of a TSV (VLMEvalKit layout) or CSV file, as dicts of strings."""
    import pandas as pd

    try:
        return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False).to_dict(orient="records")
    except Exception as e:
        raise DataError(f"{path}: cannot read TSV: {e}") from e


def read_rows(path: Path) -> list[Any]:
    """The rows of one data file by its extension, as ``datasets`` reads them: parquet, JSON Lines, a JSON list
    of objects, TSV or CSV; a JSONL line that does not parse is a :class:`MalformedRow` in its place.

    Raises:
        DataError: the file cannot be read, or a ``.json`` file is not a list of rows.
        DatasetLayoutError: the extension is not a data format.
    """
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return read_parquet([path])
    if suffix == ".jsonl":
        return list(read_jsonl(path))
    if suffix == ".json":
        data = read_json(path)
        if not isinstance(data, list):
            raise DataError(f"{path}: expected a JSON list of rows, got a {type(data).__name__}")
        return data
    if suffix in (".tsv", ".csv"):
        return read_tsv(path, sep="\t" if suffix == ".tsv" else ",")
    raise DatasetLayoutError(f"{path}: {suffix or 'no extension'} is not a data file format this reader knows "
                             "(parquet, jsonl, json, tsv, csv); check the card's data_files")


def split_files(spec: TaskSpec, root: Path, split: str, config: str | None = None) -> list[tuple[Path, list[Any]]]:
    """``(file, rows)`` of one split of a snapshot folder, the files resolved from the dataset card (the README's
    ``configs:``, else the task's ``card:``, else the file names; see :mod:`benchmarks.cards`).

    Raises:
        DatasetLayoutError: the folder is missing, the card has no such config or split, a listed file is absent,
            or the split has no rows (the message names the files and what the card says).
    """
    require_dir(spec.task, root, spec.layout, spec.dataset_id)
    card = card_for(root, spec.card, f"{spec.source or spec.task} (card:)")
    files = card.files(config, split)
    out = [(f, read_rows(f)) for f in files]
    if not any(rows for _, rows in out):
        listed = ", ".join(str(f.relative_to(root)) for f in files)
        raise DatasetLayoutError(f"task {spec.task}: split {split!r} of config {card.config(config).name!r} has no "
                                 f"rows in {listed} (the files the dataset card, {card.source}, lists); the snapshot "
                                 "is incomplete or the wrong revision")
    return out


def cached_rows(dataset_id: str, config: str | None, split: str) -> list[dict[str, Any]] | None:
    """Rows from the ``datasets`` offline cache, or ``None`` when the library or the cached dataset is absent."""
    if not dataset_id:
        return None
    try:
        import datasets  # optional: the `train` extra
    except ImportError:
        return None
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    try:
        ds = datasets.load_dataset(dataset_id, config, split=split)
    except Exception as e:  # not cached (offline), unknown config...
        logger.debug("datasets cache has no %s/%s/%s: %s", dataset_id, config, split, e)
        return None
    logger.info("reading %s (%s/%s) from the datasets cache", dataset_id, config, split)
    return [dict(r) for r in ds]


def split_rows(spec: TaskSpec, root: Path, split: str, config: str | None = None) -> list[Any]:
    """The rows of one split (files in card order): from the snapshot folder, else (folder missing) from the
    ``datasets`` offline cache, else a :class:`DatasetLayoutError` naming the expected layout."""
    if not root.is_dir():
        rows = cached_rows(spec.dataset_id, config, split)
        if rows is not None:
            return rows
    return [r for _, rows in split_files(spec, root, split, config) for r in rows]


# ------------------------------------------------------------------------------------------------ image values
_IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def image_value(value: Any, base: Path | None = None) -> Any:
    """Turn a dataset image cell into an image reference for :class:`~benchmarks.doc.Doc`.

    Accepts ``{"bytes": ..., "path": ...}`` structs (parquet), raw bytes, base64 strings, data URLs, PIL images
    and paths (relative ones resolved against ``base``). Returns bytes, a PIL image or a path string; raises
    :class:`DataError` for anything else (the sample is then recorded as failed).
    """
    if value is None:
        raise DataError("image cell is empty")
    if isinstance(value, dict):
        if value.get("bytes"):
            return bytes(value["bytes"])
        if value.get("path"):
            return image_value(value["path"], base)
        raise DataError("image struct has neither bytes nor path")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        if value.startswith("data:") and "," in value:
            value = value.split(",", 1)[1]
        elif len(value) < 4096 and (value.lower().endswith(_IMAGE_EXTS)
                                    or (base is not None and (base / value).exists())):
            p = Path(value)
            return str(p if p.is_absolute() or base is None else base / p)
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as e:
            raise DataError(f"image cell is neither a path nor base64 ({e})") from e
    if hasattr(value, "convert") and hasattr(value, "size"):  # PIL image from the datasets cache
        return value
    raise DataError(f"unsupported image cell of type {type(value).__name__}")
