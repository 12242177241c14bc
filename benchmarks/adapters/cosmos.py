"""COSMOS / Cosmos-Reason1-Benchmark (``nvidia/Cosmos-Reason1-Benchmark``), as the Pelican evaluation runs it.

Layout: ``<subset>/<subset>_benchmark_qa_pairs.json`` (a list of ``{video, qa_pairs: {question, index2ans,
answer}}``) and the clips at ``<subset>/<video>``; subsets agibot, bridgev2, holoassist, robofail, robovqa (the
repository ships clips only for robovqa and robofail; the others must be rebuilt with NVIDIA's scripts).
Sample ids are ``<subset>/<row>``. Prompt: ``{question}\\n(A) ...\\n(B) ...`` + post prompt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.adapters import build_docs, make_doc, want
from benchmarks.data import layout_error, read_json, require_dir
from benchmarks.doc import Doc
from benchmarks.task import TaskSpec
from dppo_embodied.errors import DataError
from dppo_embodied.types import VideoRef


def load(spec: TaskSpec, root: Path, subtasks: tuple[str, ...] | None = None) -> list[Doc]:
    """The docs of the selected COSMOS subsets."""
    require_dir(spec.task, root, spec.layout, spec.dataset_id)
    docs: list[Doc] = []
    for sub in spec.subtasks:
        if not want(subtasks, sub):
            continue
        path = root / sub / f"{sub}_benchmark_qa_pairs.json"
        if not path.is_file():
            raise layout_error(spec.task, root, spec.layout, spec.dataset_id, f"missing {sub}/{path.name}")
        rows = read_json(path)
        if not isinstance(rows, list):
            raise DataError(f"{path}: expected a JSON list")

        def build(i: int, row: dict[str, Any], doc_id: str, sub: str = sub) -> Doc:
            qa = row["qa_pairs"]
            choices = dict(qa["index2ans"])
            text = str(qa["question"]) + "\n" + "\n".join(f"({k}) {v}" for k, v in choices.items())
            video = VideoRef(str(root / sub / str(row["video"])))
            return make_doc(spec, doc_id, spec.apply_prompt(text), str(qa["answer"]).upper(), sub, video=video,
                            meta={"choices": choices})

        docs += build_docs(spec, rows, build, lambda i, row, sub=sub: f"{sub}/{i}", sub, sub, source=path.name)
    return docs
