"""RoboSpatial-Home (``chanhee-luke/RoboSpatial-Home``): splits context, compatibility, configuration.

Layout (the dataset card): config ``default``, splits ``context`` (122), ``compatibility`` (105), ``configuration``
(123) = ``data/<split>-*`` (parquet ``img, question, answer, category[, mask]``; ``answer`` is "yes"/"no" or a polygon
of normalised points for context). The rows have no id field: sample ids are ``<split>/<row>``. Prompt (Pelican, from
FlagEvalMM): the dataset's own format instruction is removed and replaced by one asking for ``Answer: ...`` on the last
line (points for context, yes/no otherwise).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.adapters import build_docs, make_doc, want
from benchmarks.data import image_value, split_rows
from benchmarks.doc import Doc
from benchmarks.task import TaskSpec

_REMOVE = (
    "Your answer should be formatted as a list of tuples, i.e. [(x1, y1), ...], where each tuple contains the x and y "
    "coordinates of a point satisfying the conditions above. The coordinates should be between 0 and 1, indicating "
    "the normalized pixel locations of the points.",
    "Answer yes or no.",
)
# The official prompts are indented triple-quoted strings: the indentation is part of the text.
POINT_PROMPT = (
    "Your task is to identify specific points in the image based on the question. Respond with a brief explanation "
    "if needed, followed by a list of 2D point coordinates.\n\n    Each point should be represented as a normalized "
    "(x, y) tuple, where both x and y values are floats between 0 and 1, corresponding to the position within the "
    "image (e.g., for a point at pixel (50, 75) in a 100*100 image, the normalized coordinate is (0.5, 0.75)).\n\n"
    "    Format your final answer strictly as follows on the last line of your response:\n    Answer: [(x1, y1), "
    "(x2, y2), ..., (xn, yn)]\n\n    Do not include additional text after this line.\n    "
)
YES_NO_PROMPT = (
    "Your task is to answer the question above. Respond with a brief explanation if needed, followed by a yes or no "
    "answer in the last line of your response.\n\n    Format your final answer strictly as follows on the last line "
    "of your response:\n    Answer: yes or no\n\n    Do not include additional text after this line.\n    "
)


def build_prompt(question: str, category: str) -> str:
    """The Pelican prompt of one RoboSpatial question."""
    for s in _REMOVE:
        question = question.replace(s, "").strip()
    return question + (POINT_PROMPT if category == "context" else YES_NO_PROMPT)


def load(spec: TaskSpec, root: Path, subtasks: tuple[str, ...] | None = None) -> list[Doc]:
    """The docs of the selected RoboSpatial-Home splits."""
    docs: list[Doc] = []
    for split in spec.subtasks:
        if not want(subtasks, split):
            continue

        def build(i: int, row: dict[str, Any], doc_id: str, split: str = split) -> Doc:
            category = str(row.get("category") or split)
            prompt = build_prompt(str(row.get("question", "")), category)
            image = image_value(row["img"], root)
            answer = row["answer"]
            return make_doc(spec, doc_id, prompt, answer if isinstance(answer, str) else str(answer), split,
                            images=[image], meta={"split": split, "category": category})

        rows = split_rows(spec, root, split, spec.dataset_config)
        docs += build_docs(spec, rows, build, lambda i, row, split=split: f"{split}/{i}", split, split)
    return docs
