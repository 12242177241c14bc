"""``tabletop_qa``: a folder of :class:`~dppo_embodied.types.EmbodiedSample` JSONL files (``dppo data generate``),
scored with :func:`benchmarks.metrics.score_sample` (the RL rewards' definition of success). The metaloop's
held-out evaluation uses it.

Layout: ``*.jsonl`` files (searched recursively), one sample per line, media paths relative to each file. Sample
ids are the samples' own ids. The prompt is the training prompt (question, lettered options for mcq, the answer
instruction), word for word :func:`training.sample_io.prompt_text` (a test keeps the two identical); capabilities
come from each sample; the subtask is the answer type.
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.adapters import failed_doc, make_doc
from benchmarks.data import layout_error, require_dir
from benchmarks.doc import Doc
from benchmarks.task import TaskSpec
from dppo_embodied.errors import DataError
from dppo_embodied.types import AnswerType, EmbodiedSample, resolve_media_paths

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
    seen: set[str] = set()
    for path in files:
        with path.open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    s = EmbodiedSample.from_dict(json.loads(line))
                except (ValueError, TypeError, DataError) as e:
                    docs.append(failed_doc(spec, f"{path.stem}/line{lineno}", f"{path.name}:{lineno}: {e}"))
                    continue
                if s.id in seen:
                    raise DataError(f"{path}:{lineno}: duplicate sample id {s.id!r}; ids must be unique")
                seen.add(s.id)
                resolve_media_paths(s, path.parent)
                if subtasks is not None and s.answer_type.value not in subtasks:
                    continue
                docs.append(make_doc(spec, s.id, prompt_text(s), s, s.answer_type.value, images=list(s.images),
                                     video=s.video, capabilities=list(s.capabilities),
                                     meta={"source": s.source}))
    return docs
