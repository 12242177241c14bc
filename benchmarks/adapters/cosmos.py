"""COSMOS / Cosmos-Reason1-Benchmark (``nvidia/Cosmos-Reason1-Benchmark``), as the Pelican evaluation runs it.

Layout (the dataset card): one config per subset (agibot, bridgev2, holoassist, robofail, robovqa) with one split
``benchmark`` = ``<subset>/<subset>_benchmark_qa_pairs.json`` (a list of ``{video, qa_pairs: {question, index2ans,
answer}}``) and the clips at ``<subset>/<video>`` (the repository ships clips only for robovqa and robofail; the
others must be rebuilt with NVIDIA's scripts). The rows have no id field (robovqa repeats videos): sample ids are
``<file stem>/<row>`` = ``<subset>_benchmark_qa_pairs/<row>``. Prompt: ``{question}\\n(A) ...\\n(B) ...`` + post
prompt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.adapters import build_docs, make_doc, want
from benchmarks.data import require_dir, split_files
from benchmarks.doc import Doc
from benchmarks.task import TaskSpec
from dppo_embodied.types import VideoRef


def load(spec: TaskSpec, root: Path, subtasks: tuple[str, ...] | None = None) -> list[Doc]:
    """The docs of the selected COSMOS subsets."""
    require_dir(spec.task, root, spec.layout, spec.dataset_id)
    split = str(spec.adapter_options.get("split", "benchmark"))
    docs: list[Doc] = []
    for sub in spec.subtasks:
        if not want(subtasks, sub):
            continue
        for path, rows in split_files(spec, root, split, sub):

            def build(i: int, row: dict[str, Any], doc_id: str, sub: str = sub) -> Doc:
                qa = row["qa_pairs"]
                choices = dict(qa["index2ans"])
                text = str(qa["question"]) + "\n" + "\n".join(f"({k}) {v}" for k, v in choices.items())
                video = VideoRef(str(root / sub / str(row["video"])))
                return make_doc(spec, doc_id, spec.apply_prompt(text), str(qa["answer"]).upper(), sub, video=video,
                                meta={"choices": choices})

            docs += build_docs(spec, rows, build, lambda i, row, stem=path.stem: f"{stem}/{i}", path.stem, sub,
                               source=path.name)
    return docs
