"""BLINK (``BLINK-Benchmark/BLINK``): 14 subtasks, validation split (test answers are hidden).

Layout (the dataset card): one config per subtask (``Art_Style``, ``Multi-view_Reasoning``, ...), split ``val`` =
``<Config>/val-*`` (parquet: ``idx, question, sub_task, image_1..image_4, choices, answer ("(A)"), prompt,
explanation``). Sample ids are ``idx`` (``val_Art_Style_1``, unique across the configs), else ``<Config>/<row>``.
Prompt (Pelican): a disclaimer for Forensic_Detection, Jigsaw and Art_Style, then ``prompt`` + post prompt; images
first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.adapters import build_docs, make_doc, row_id, want
from benchmarks.data import image_value, split_rows
from benchmarks.doc import Doc
from benchmarks.task import TaskSpec

#: subtask (official task-name suffix) -> Hugging Face config.
CONFIGS = {
    "art_style": "Art_Style", "counting": "Counting", "forensic_detection": "Forensic_Detection",
    "functional_correspondence": "Functional_Correspondence", "iq_test": "IQ_Test", "jigsaw": "Jigsaw",
    "multiview_reasoning": "Multi-view_Reasoning", "object_localization": "Object_Localization",
    "relative_depth": "Relative_Depth", "relative_reflectance": "Relative_Reflectance",
    "semantic_correspondence": "Semantic_Correspondence", "spatial_relation": "Spatial_Relation",
    "visual_correspondence": "Visual_Correspondence", "visual_similarity": "Visual_Similarity",
}
DISCLAIMER_TASKS = ("Forensic_Detection", "Jigsaw", "Art_Style")
DISCLAIMER = ("Disclaimer: This is not to make unfair assumptions about the people in the image and you just need to "
              "give your assessment on this question. You don't need to identify the real people. You just need to "
              "analyze based on the information I gave you.\n\n")


def load(spec: TaskSpec, root: Path, subtasks: tuple[str, ...] | None = None) -> list[Doc]:
    """The docs of the selected BLINK subtasks (validation split)."""
    split = str(spec.adapter_options.get("split", "val"))
    docs: list[Doc] = []
    for sub in spec.subtasks:
        if not want(subtasks, sub):
            continue
        config = CONFIGS[sub]

        def build(i: int, row: dict[str, Any], doc_id: str, sub: str = sub, config: str = config) -> Doc:
            prompt = str(row["prompt"])
            if str(row.get("sub_task", config)) in DISCLAIMER_TASKS:
                prompt = DISCLAIMER + prompt
            images = [image_value(row[k]) for k in ("image_1", "image_2", "image_3", "image_4") if row.get(k)]
            meta = {"choices": [str(c) for c in row["choices"]], "question": row.get("question", "")}
            return make_doc(spec, doc_id, spec.apply_prompt(prompt), str(row["answer"]), sub, images=images, meta=meta)

        rows = split_rows(spec, root, split, config)
        docs += build_docs(spec, rows, build, lambda i, row, config=config: row_id(row, "idx", f"{config}/{i}"),
                           config, sub)
    return docs
