"""Reading benchmark datasets from a local Hugging Face snapshot folder (or the ``datasets`` cache).

Nothing is downloaded: adapters read the files of a folder laid out exactly like the dataset's Hugging Face
repository (``huggingface-cli download <id> --repo-type dataset --local-dir DIR``). When the folder is missing and
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

from dppo_embodied.errors import DataError
from dppo_embodied.types import iter_json_lines

logger = logging.getLogger(__name__)


class DatasetLayoutError(DataError):
    """The dataset folder is missing or not laid out as expected. The message names the expected layout."""


def layout_error(task: str, root: Path, layout: str, dataset_id: str = "", detail: str = "") -> DatasetLayoutError:
    """A :class:`DatasetLayoutError` that says where we looked, what we expected and how to get it."""
    how = (f"; download it once with: huggingface-cli download {dataset_id} --repo-type dataset --local-dir {root}"
           if dataset_id else "")
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


def read_tsv(path: Path) -> list[dict[str, Any]]:
    """Rows of a TSV file (VLMEvalKit layout), as dicts of strings."""
    import pandas as pd

    try:
        return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False).to_dict(orient="records")
    except Exception as e:
        raise DataError(f"{path}: cannot read TSV: {e}") from e


def find_split_files(root: Path, split: str, config: str | None = None, exts: tuple[str, ...] = (".parquet",)
                     ) -> list[Path]:
    """Data files of one split in a Hugging Face snapshot, by the usual naming conventions.

    With a ``config``: ``<config>/<split>-*``, ``<config>/<split>.*``, ``<config>/<split>/*``, then any file under
    ``<config>/`` whose name contains ``<split>`` (case-insensitive). Without: the same under ``data/`` and the
    root, then any file under ``root`` whose name contains ``<split>``. Returns the sorted files of the first
    pattern that matches (possibly none).
    """
    bases = [root / config] if config else [root / "data", root]
    for base in bases:
        for pat in (f"{split}-*", f"{split}.*", f"{split}/*"):
            files = sorted(p for p in base.glob(pat) if p.is_file() and p.suffix in exts)
            if files:
                return files
    search = root / config if config else root
    if not search.is_dir():
        return []
    low = split.lower()
    return sorted(p for p in search.rglob("*") if p.is_file() and p.suffix in exts and low in p.name.lower())


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


def split_rows(task: str, root: Path, split: str, layout: str, dataset_id: str = "", config: str | None = None,
               exts: tuple[str, ...] = (".parquet", ".jsonl", ".json", ".tsv")) -> list[Any]:
    """Rows of one split from the snapshot folder, else from the ``datasets`` cache, else a layout error.

    JSON files may hold a list of rows; a JSONL line that does not parse is a :class:`MalformedRow` in its place.
    Rows are not checked further: adapters build them with :func:`benchmarks.adapters.build_docs`.
    """
    if root.is_dir():
        files = find_split_files(root, split, config, exts)
        if files:
            suffix = files[0].suffix
            if suffix == ".parquet":
                return read_parquet(files)
            if suffix == ".tsv":
                return [r for f in files for r in read_tsv(f)]
            if suffix == ".jsonl":
                return [r for f in files for r in read_jsonl(f)]
            data = read_json(files[0])
            return data if isinstance(data, list) else list(data.values())
    rows = cached_rows(dataset_id, config, split)
    if rows is not None:
        return rows
    raise layout_error(task, root, layout, dataset_id, f"no data files for split {split!r}")


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
