"""Where2Place (``wentao-yuan/where2place``): 100 free-space pointing questions on 640 x 480 images.

Layout: ``point_questions.jsonl`` (rows with ``image`` and the question in ``text``, or ``question`` in the
FlagEval mirror; optional ``question_id``, ``mask``), ``images/<image>`` and ``masks/<image>`` (JPEG masks; a
row's own ``mask`` field wins). Sample ids are ``question_id`` when present, else ``point_questions/<row>``.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.adapters import failed_doc, make_doc
from benchmarks.data import iter_jsonl, layout_error, require_dir
from benchmarks.doc import Doc
from benchmarks.task import TaskSpec


def load(spec: TaskSpec, root: Path, subtasks: tuple[str, ...] | None = None) -> list[Doc]:
    """The Where2Place docs (the target is the mask path)."""
    require_dir(spec.task, root, spec.layout, spec.dataset_id)
    path = root / "point_questions.jsonl"
    if not path.is_file():
        raise layout_error(spec.task, root, spec.layout, spec.dataset_id, "missing point_questions.jsonl")
    size = tuple(spec.adapter_options.get("image_size", (640, 480)))
    docs: list[Doc] = []
    for row, rec, err in iter_jsonl(path):
        doc_id = f"{path.stem}/{row}" if rec is None or "question_id" not in rec else str(rec["question_id"])
        if rec is None:
            docs.append(failed_doc(spec, doc_id, err or "malformed row"))
            continue
        question = rec.get("text", rec.get("question"))
        image = rec.get("image")
        if not isinstance(question, str) or not isinstance(image, str):
            docs.append(failed_doc(spec, doc_id, f"row {row} of {path.name} needs string 'image' and 'text'"))
            continue
        mask = root / "masks" / Path(str(rec.get("mask") or image)).name
        docs.append(make_doc(spec, doc_id, spec.apply_prompt(question), str(mask),
                             images=[str(root / "images" / image)],
                             meta={"image_size": size, "category": rec.get("category")}))
    return docs
