"""VSI-Bench (``nyu-visionx/VSI-Bench``): 5,130 questions on 288 scene videos.

Layout (the dataset card, or the file names when the card lists no configs): the default config's ``test`` split
(``test-00000-of-00001.parquet`` in the release snapshot) with ``id, dataset, scene_name, question_type,
question, ground_truth, options``, and the videos ``<dataset>/<scene_name>.mp4`` (from ``arkitscenes.zip``,
``scannet.zip``, ``scannetpp.zip``); ``adapter_options.config`` picks another config of a later card. Sample ids
are ``id``, else ``test/<row>``. Prompt (lmms-eval/Pelican): ``These are frames of a video.\\n{q}`` then
``\\nPlease answer the question using a single word or phrase.`` for numeric questions, or
``\\nOptions:\\n{options}\\nAnswer with the option's letter from the given choices directly.`` for multiple choice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.adapters import build_docs, make_doc, row_id, want
from benchmarks.data import split_rows
from benchmarks.doc import Doc
from benchmarks.scoring.spatial import MCA_TYPES, NA_TYPES
from benchmarks.task import TaskSpec
from dppo_embodied.types import VideoRef

NA_POST = "Please answer the question using a single word or phrase."
MCA_POST = "Answer with the option's letter from the given choices directly."


def build_prompt(spec: TaskSpec, question: str, qtype: str, options: list[str] | None) -> str:
    """The official prompt of one question."""
    pre = spec.prompt.pre or "These are frames of a video."
    if qtype in NA_TYPES:
        return pre + "\n" + question + "\n" + str(spec.adapter_options.get("na_post_prompt", NA_POST))
    opts = "Options:\n" + "\n".join(options or [])
    return "\n".join([pre, question, opts, str(spec.adapter_options.get("mca_post_prompt", MCA_POST))])


def load(spec: TaskSpec, root: Path, subtasks: tuple[str, ...] | None = None) -> list[Doc]:
    """The VSI-Bench docs (subtask = question type)."""
    config = spec.adapter_options.get("config", spec.dataset_config)
    rows = split_rows(spec, root, "test", None if config is None else str(config))

    def build(i: int, row: dict[str, Any], doc_id: str) -> Doc | None:
        qtype = str(row.get("question_type"))
        if not want(subtasks, qtype):
            return None
        if qtype not in MCA_TYPES and qtype not in NA_TYPES:
            raise ValueError(f"unknown question_type {qtype!r}")
        options = list(row["options"]) if row.get("options") is not None else None
        prompt = build_prompt(spec, str(row["question"]), qtype, options)
        video = VideoRef(str(root / str(row["dataset"]) / f"{row['scene_name']}.mp4"))
        return make_doc(spec, doc_id, prompt, row["ground_truth"], qtype, video=video, meta={"question_type": qtype})

    def qtype_of(row: dict[str, Any]) -> str | None:
        qtype = str(row.get("question_type"))
        return qtype if qtype in MCA_TYPES or qtype in NA_TYPES else None

    return build_docs(spec, rows, build, lambda i, row: row_id(row, "id", f"test/{i}"), "test", subtask_of=qtype_of)
