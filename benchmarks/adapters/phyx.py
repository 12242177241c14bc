"""PhyX (``Cloudriver/PhyX``), the ``phyx_mini_mc`` split of the ``data_for_llms_eval`` config (1,000 multiple choice
questions): rows ``{index, question, image (base64), answer, category, subfield, reasoning_type}``. The question text
already holds the options and the instruction (the official prompt is the question alone).

Layout (the dataset card): config ``data_for_llms_eval``, split ``phyx_mini_mc`` =
``data_llms_eval/PhyX_mini_MC.parquet`` (``phyx_mc`` = ``data_llms_eval/PhyX_MC.parquet``; ``adapter_options.split``
picks another split). Sample ids are ``index``, else ``<split>/<row>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.adapters import build_docs, make_doc, row_id
from benchmarks.data import image_value, split_rows
from benchmarks.doc import Doc
from benchmarks.task import TaskSpec


def load(spec: TaskSpec, root: Path, subtasks: tuple[str, ...] | None = None) -> list[Doc]:
    """The PhyX MC docs."""
    split = str(spec.adapter_options.get("split", "phyx_mini_mc"))
    rows = split_rows(spec, root, split, spec.dataset_config)

    def build(i: int, row: dict[str, Any], doc_id: str) -> Doc:
        image = image_value(row["image"], root)
        return make_doc(spec, doc_id, spec.apply_prompt(str(row["question"])), str(row["answer"]), images=[image],
                        meta={"category": row.get("category")})

    return build_docs(spec, rows, build, lambda i, row: row_id(row, "index", f"{split}/{i}"), split)
