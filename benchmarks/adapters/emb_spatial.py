"""EmbSpatial-Bench (``Phineas476/EmbSpatial-Bench``): ``embspatial_bench.json``, a list of ``{question_id,
question, answer_options, answer (index), relation, data_source, image (base64)}``. Sample ids are the
``question_id``. Prompt (Pelican): ``{question}\\nOptions:\\nA.{opt}\\nB.{opt}...`` + the post prompt with no
separator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.adapters import LETTERS, build_docs, make_doc, option_letter
from benchmarks.data import image_value, layout_error, read_json, require_dir
from benchmarks.doc import Doc
from benchmarks.task import TaskSpec
from dppo_embodied.errors import DataError


def load(spec: TaskSpec, root: Path, subtasks: tuple[str, ...] | None = None) -> list[Doc]:
    """The EmbSpatial-Bench docs."""
    require_dir(spec.task, root, spec.layout, spec.dataset_id)
    path = root / "embspatial_bench.json"
    if not path.is_file():
        raise layout_error(spec.task, root, spec.layout, spec.dataset_id, "missing embspatial_bench.json")
    rows = read_json(path)
    if not isinstance(rows, list):
        raise DataError(f"{path}: expected a JSON list")

    def build(i: int, row: dict[str, Any], doc_id: str) -> Doc:
        opts = [str(o) for o in row["answer_options"]]
        text = str(row["question"]) + "\nOptions:\n" + "\n".join(f"{LETTERS[k]}.{o}" for k, o in enumerate(opts))
        target = option_letter(row["answer"], len(opts))
        meta = {"relation": row.get("relation"), "data_source": row.get("data_source")}
        return make_doc(spec, doc_id, spec.apply_prompt(text), target, images=[image_value(row["image"])], meta=meta)

    return build_docs(spec, rows, build, lambda i, row: row.get("question_id", f"{path.stem}/{i}"), path.stem,
                      source=path.name)
