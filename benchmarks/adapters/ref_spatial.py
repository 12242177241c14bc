"""RefSpatial-Bench (``BAAI/RefSpatial-Bench``): splits location (100), placement (100), unseen (77).

Layout (the dataset card): config ``default``, split ``<split>`` = ``data/<split>-*`` (parquet ``id, image, mask,
object, prompt, suffix, step``); or the card's raw-data form ``<Split>/question.json`` (rows ``id, prompt, suffix,
image, mask`` with paths relative to the split folder), read when the parquet files are absent. The ``id`` column
restarts at 1 in every split, so it is not unique across the task: sample ids are ``<split>/<row>`` (0-based
position in the split) in both forms. Prompt (Pelican): ``{prompt} {suffix}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.adapters import build_docs, make_doc, want
from benchmarks.data import DatasetLayoutError, cached_rows, image_value, read_json, split_rows
from benchmarks.doc import Doc
from benchmarks.task import TaskSpec


def _split_rows(spec: TaskSpec, root: Path, split: str) -> tuple[list[Any], Path]:
    """Rows of a split and the folder their relative media paths start from."""
    if not root.is_dir():
        rows = cached_rows(spec.dataset_id, spec.dataset_config, split)
        if rows is not None:
            return rows, root
    try:
        return split_rows(spec, root, split, spec.dataset_config), root
    except DatasetLayoutError as card_error:
        for folder in (root / split, root / split.capitalize()):
            if (folder / "question.json").is_file():
                rows = read_json(folder / "question.json")
                if isinstance(rows, list) and rows:
                    return rows, folder
        raise card_error


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
                            meta={"split": split, "object": row.get("object"), "source_id": row.get("id")})

        docs += build_docs(spec, rows, build, lambda i, row, split=split: f"{split}/{i}", split, split)
    return docs
