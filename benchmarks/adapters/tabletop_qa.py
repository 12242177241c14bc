"""``tabletop_qa``: a folder of :class:`~dppo_embodied.types.EmbodiedSample` JSONL files (``dppo data generate``),
scored with :func:`benchmarks.metrics.score_sample` (the RL rewards' definition of success). The metaloop's
held-out evaluation uses it.

Layout: ``*.jsonl`` files (searched recursively), one sample per line, media paths relative to each file. Sample
ids are the samples' own ids. The prompt is the training prompt (question, lettered options for mcq, the answer
instruction), word for word :func:`training.algorithm.sample_io.prompt_text` (a test keeps the two identical);
capabilities come from each sample; the subtask is the answer type. A row that cannot be read (not UTF-8, not JSON,
not a valid sample) is a failed sample ``<file stem>/line<N>`` whose reason names the file and line; a repeated id
fails in the runner (the first occurrence is kept).
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.adapters import build_docs, make_doc
from benchmarks.data import MalformedRow, layout_error, require_dir
from benchmarks.doc import Doc
from benchmarks.task import TaskSpec
from dppo_embodied.types import AnswerType, EmbodiedSample, iter_sample_rows

ANSWER_INSTRUCTION = "Answer in <answer></answer>."


def prompt_text(sample: EmbodiedSample) -> str:
    """The user text of a sample: question, lettered options for ``mcq``, and the answer instruction."""
    parts = [sample.question.strip()]
    if sample.answer_type is AnswerType.MCQ and sample.options:
        parts += [f"({letter}) {text}" for letter, text in zip(sample.option_letters, sample.options, strict=False)]
    parts.append(ANSWER_INSTRUCTION)
    return "\n".join(parts)


def load(spec: TaskSpec, root: Path, subtasks: tuple[str, ...] | None = None) -> list[Doc]:
    """The docs of every sample file under ``root`` (files in sorted order, rows in file order)."""
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
