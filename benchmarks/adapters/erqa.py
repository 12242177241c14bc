"""ERQA in the layout that the official conversion script (Pelican ``process_erqa.py``) writes from
``erqa.tfrecord``: ``erqa.jsonl`` rows ``{question, answer, question_type, visual_indices, images}`` with the
images re-encoded as ``images/ex<i>_img<j>.jpg``. All images come before the question (``visual_indices`` is
ignored, as in Pelican). Sample ids are ``erqa/<row>``.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.adapters import failed_doc, make_doc
from benchmarks.data import iter_jsonl, layout_error, require_dir
from benchmarks.doc import Doc
from benchmarks.task import TaskSpec


def load(spec: TaskSpec, root: Path, subtasks: tuple[str, ...] | None = None) -> list[Doc]:
    """The ERQA docs."""
    require_dir(spec.task, root, spec.layout, spec.dataset_id)
    path = root / "erqa.jsonl"
    if not path.is_file():
        raise layout_error(spec.task, root, spec.layout, spec.dataset_id, "missing erqa.jsonl")
    docs: list[Doc] = []
    for row, rec, err in iter_jsonl(path):
        doc_id = f"{path.stem}/{row}"
        if rec is None:
            docs.append(failed_doc(spec, doc_id, err or "malformed row"))
            continue
        try:
            images = [str(root / p) for p in rec["images"]]
            meta = {"question_type": str(rec.get("question_type", "Unknown"))}
            docs.append(make_doc(spec, doc_id, spec.apply_prompt(str(rec["question"])), str(rec["answer"]),
                                 images=images, meta=meta))
        except (KeyError, TypeError) as e:
            docs.append(failed_doc(spec, doc_id, f"malformed row {row} of {path.name}: missing {e}"))
    return docs
