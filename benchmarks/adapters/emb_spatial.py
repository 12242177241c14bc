"""EmbSpatial-Bench (``Phineas476/EmbSpatial-Bench``): ``embspatial_bench.json``, a list of ``{question_id,
question, answer_options, answer (index), relation, data_source, image (base64)}``. Sample ids are the
``question_id``. Prompt (Pelican): ``{question}\\nOptions:\\nA.{opt}\\nB.{opt}...`` + the post prompt with no
separator.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.adapters import LETTERS, failed_doc, make_doc
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
    docs: list[Doc] = []
    for i, row in enumerate(rows):
        doc_id = str(row.get("question_id", f"{path.stem}/{i}")) if isinstance(row, dict) else f"{path.stem}/{i}"
        try:
            opts = [str(o) for o in row["answer_options"]]
            text = str(row["question"]) + "\nOptions:\n" + "\n".join(f"{LETTERS[k]}.{o}" for k, o in enumerate(opts))
            target = LETTERS[int(row["answer"])]
            meta = {"relation": row.get("relation"), "data_source": row.get("data_source")}
            image = image_value(row["image"])
        except (KeyError, TypeError, ValueError, IndexError, DataError) as e:
            docs.append(failed_doc(spec, doc_id, f"malformed row {i} of {path.name}: {type(e).__name__}: {e}"))
            continue
        docs.append(make_doc(spec, doc_id, spec.apply_prompt(text), target, images=[image], meta=meta))
    return docs
