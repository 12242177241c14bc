"""Where2Place (``wentao-yuan/where2place``): 100 free-space pointing questions on 640 x 480 images.

Layout: ``point_questions.jsonl`` (rows with ``image`` and the question in ``text``, or ``question`` in the
FlagEval mirror; optional ``question_id``, ``mask``), ``images/<image>`` and ``masks/<image>`` (JPEG masks; a
row's own ``mask`` field wins). Sample ids are ``question_id`` when present, else ``point_questions/<row>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.adapters import build_docs, make_doc
from benchmarks.data import layout_error, read_jsonl, require_dir
from benchmarks.doc import Doc
from benchmarks.task import TaskSpec


def load(spec: TaskSpec, root: Path, subtasks: tuple[str, ...] | None = None) -> list[Doc]:
    """The Where2Place docs (the target is the mask path)."""
    require_dir(spec.task, root, spec.layout, spec.dataset_id)
    path = root / "point_questions.jsonl"
    if not path.is_file():
        raise layout_error(spec.task, root, spec.layout, spec.dataset_id, "missing point_questions.jsonl")
    size = tuple(spec.adapter_options.get("image_size", (640, 480)))

    def build(i: int, rec: dict[str, Any], doc_id: str) -> Doc:
        question = rec.get("text", rec.get("question"))
        image = rec.get("image")
        if not isinstance(question, str) or not isinstance(image, str):
            raise TypeError(f"row needs string 'image' and 'text', got {type(image).__name__} and "
                            f"{type(question).__name__}")
        mask = root / "masks" / Path(str(rec.get("mask") or image)).name
        return make_doc(spec, doc_id, spec.apply_prompt(question), str(mask), images=[str(root / "images" / image)],
                        meta={"image_size": size, "category": rec.get("category")})

    def id_of(i: int, rec: dict[str, Any]) -> str:
        return str(rec["question_id"]) if "question_id" in rec else f"{path.stem}/{i}"

    return build_docs(spec, read_jsonl(path), build, id_of, path.stem, source=path.name)
