"""OmniSpatial (``qizekun/OmniSpatial``): ``OmniSpatial-test/data.json`` (rows ``{id, task_type, sub_task_type,
question, options, answer (index)}``) and images ``OmniSpatial-test/<task_type>/<id before "_">.png``.
Sample ids are ``id``. Prompt (Pelican): the official system text + the answer-format text (as the pre prompt),
then the question and ``\\nA. {option}`` lines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.adapters import LETTERS, build_docs, make_doc, option_letter
from benchmarks.data import layout_error, read_json, require_dir
from benchmarks.doc import Doc
from benchmarks.task import TaskSpec
from dppo_embodied.errors import DataError


def load(spec: TaskSpec, root: Path, subtasks: tuple[str, ...] | None = None) -> list[Doc]:
    """The OmniSpatial docs."""
    require_dir(spec.task, root, spec.layout, spec.dataset_id)
    base = root / "OmniSpatial-test" if (root / "OmniSpatial-test" / "data.json").is_file() else root
    path = base / "data.json"
    if not path.is_file():
        raise layout_error(spec.task, root, spec.layout, spec.dataset_id, "missing OmniSpatial-test/data.json")
    rows = read_json(path)
    if not isinstance(rows, list):
        raise DataError(f"{path}: expected a JSON list")

    def build(i: int, row: dict[str, Any], doc_id: str) -> Doc:
        task_type = str(row["task_type"])
        text = spec.prompt.pre + str(row["question"])
        text += "".join(f"\n{LETTERS[k]}. {o}" for k, o in enumerate(row["options"]))
        image = base / task_type / f"{str(row['id']).split('_')[0]}.png"
        target = option_letter(row["answer"], len(row["options"]))
        meta = {"task_type": task_type, "sub_task_type": row.get("sub_task_type")}
        return make_doc(spec, doc_id, text + spec.prompt.post, target, images=[str(image)], meta=meta)

    return build_docs(spec, rows, build, lambda i, row: row.get("id", f"data/{i}"), "data", source=path.name)
