"""RefSpatial-Bench (``BAAI/RefSpatial-Bench``): splits location, placement, unseen.

Layout: parquet per split (``data/<split>-*.parquet`` or ``<split>-*.parquet``) with ``id, image, mask, prompt,
suffix, object, step``, or the folder form ``<Split>/question.json`` (rows with ``id, prompt, suffix, image, mask``
paths relative to the split folder). Ids are per split, so sample ids are ``<split>/<id>``. Prompt (Pelican):
``{prompt} {suffix}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.adapters import build_docs, make_doc, want
from benchmarks.data import cached_rows, find_split_files, image_value, layout_error, read_json, read_parquet
from benchmarks.doc import Doc
from benchmarks.task import TaskSpec


def _split_rows(spec: TaskSpec, root: Path, split: str) -> tuple[list[dict[str, Any]], Path]:
    files = find_split_files(root, split, exts=(".parquet",)) if root.is_dir() else []
    if files:
        return read_parquet(files), files[0].parent
    for folder in (root / split, root / split.capitalize()):
        if (folder / "question.json").is_file():
            rows = read_json(folder / "question.json")
            if isinstance(rows, list):
                return rows, folder
    rows = cached_rows(spec.dataset_id, None, split)
    if rows is not None:
        return rows, root
    raise layout_error(spec.task, root, spec.layout, spec.dataset_id, f"no data for split {split!r}")


def load(spec: TaskSpec, root: Path, subtasks: tuple[str, ...] | None = None) -> list[Doc]:
    """The docs of the selected RefSpatial-Bench splits."""
    docs: list[Doc] = []
    for split in spec.subtasks:
        if not want(subtasks, split):
            continue
        rows, base = _split_rows(spec, root, split)

        def build(i: int, row: dict[str, Any], doc_id: str, split: str = split, base: Path = base) -> Doc:
            text = f"{row['prompt']} {row['suffix']}"
            image, mask = image_value(row["image"], base), image_value(row["mask"], base)
            return make_doc(spec, doc_id, spec.apply_prompt(text), mask, split, images=[image],
                            meta={"split": split, "object": row.get("object")})

        docs += build_docs(spec, rows, build, lambda i, row, split=split: f"{split}/{row.get('id', i)}", split, split)
    return docs
