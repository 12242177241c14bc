"""``tabletop_qa``: :class:`~dppo_embodied.types.EmbodiedSample` JSONL files (``dppo data generate``), scored with
:func:`dppo_embodied.metrics.score_sample` (the RL rewards' definition of success). The metaloop's held-out
evaluation and general replay run it in process (:mod:`training.algorithm.evaluation`).

Layout: a folder of ``*.jsonl`` files (searched recursively), or one ``.jsonl`` file; one sample per line, media
paths relative to each file. Sample ids are the samples' own ids. The prompt is the training prompt,
:func:`dppo_embodied.rendering.prompt_text` (question, lettered options for mcq, the answer instruction), and the
doc keeps the sample's media references, so the one renderer gives the model the same conversation here as in
training; capabilities come from each sample; the subtask is the answer type. A row that cannot be read (not UTF-8,
not JSON, not a valid sample) is a failed sample ``<file stem>/line<N>`` whose reason names the file and line; a
repeated id fails in the runner (the first occurrence is kept).
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.adapters import build_docs, make_doc
from benchmarks.data import MalformedRow, layout_error, require_dir
from benchmarks.doc import Doc
from benchmarks.task import TaskSpec
from dppo_embodied.rendering import prompt_text
from dppo_embodied.types import EmbodiedSample, iter_sample_rows


def load(spec: TaskSpec, root: Path, subtasks: tuple[str, ...] | None = None) -> list[Doc]:
    """The docs of every sample file under ``root`` (files in sorted order, rows in file order), or of the sample
    file ``root``."""
    if root.is_file() and root.suffix == ".jsonl":
        files = [root]
    else:
        require_dir(spec.task, root, spec.layout, spec.dataset_id)
        files = sorted(root.rglob("*.jsonl"))
    if not files:
        raise layout_error(spec.task, root, spec.layout, detail="no *.jsonl sample files")
    docs: list[Doc] = []
    for path in files:
        rows = [s if s is not None else MalformedRow(str(err), lineno) for lineno, s, err in iter_sample_rows(path)]

        def build(i: int, s: EmbodiedSample, doc_id: str) -> Doc | None:
            if subtasks is not None and s.answer_type.value not in subtasks:
                return None
            return make_doc(spec, doc_id, prompt_text(s), s, s.answer_type.value, images=list(s.images),
                            video=s.video, capabilities=list(s.capabilities), meta={"source": s.source})

        def id_of(i: int, row: EmbodiedSample | MalformedRow, stem: str = path.stem) -> str:
            return row.id if isinstance(row, EmbodiedSample) else f"{stem}/line{row.line}"

        docs += build_docs(spec, rows, build, id_of, path.stem, source=path.name)
    return docs
