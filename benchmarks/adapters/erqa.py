"""ERQA in the layout that the official conversion script (Pelican ``process_erqa.py``) writes from
``erqa.tfrecord``: ``erqa.jsonl`` rows ``{question, answer, question_type, visual_indices, images}`` with the
images re-encoded as ``images/ex<i>_img<j>.jpg``. All images come before the question (``visual_indices`` is
ignored, as in Pelican). Sample ids are ``erqa/<row>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.adapters import build_docs, make_doc
from benchmarks.data import layout_error, read_jsonl, require_dir
from benchmarks.doc import Doc
from benchmarks.task import TaskSpec


def load(spec: TaskSpec, root: Path, subtasks: tuple[str, ...] | None = None) -> list[Doc]:
    """The ERQA docs."""
    require_dir(spec.task, root, spec.layout, spec.dataset_id)
    path = root / "erqa.jsonl"
    if not path.is_file():
        raise layout_error(spec.task, root, spec.layout, spec.dataset_id, "missing erqa.jsonl")

    def build(i: int, rec: dict[str, Any], doc_id: str) -> Doc:
        if not isinstance(rec["images"], list):
            raise TypeError(f"'images' must be a list of paths, got {type(rec['images']).__name__}")
        images = [str(root / p) for p in rec["images"]]
        meta = {"question_type": str(rec.get("question_type", "Unknown"))}
        return make_doc(spec, doc_id, spec.apply_prompt(str(rec["question"])), str(rec["answer"]), images=images,
                        meta=meta)

    return build_docs(spec, read_jsonl(path), build, lambda i, rec: f"{path.stem}/{i}", path.stem, source=path.name)
