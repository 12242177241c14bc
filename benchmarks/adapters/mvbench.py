"""MVBench (``OpenGVLab/MVBench``): 20 video multiple-choice tasks.

Layout (the dataset card): one config per task whose ``data_files`` is ``json/<task>.json`` (so its one split is
``train``): a list of ``{video, question, candidates, answer[, start, end]}`` (``answer`` is the text of the right
candidate); the videos under ``video/<source folder>/<video>`` (the folders of the ``video`` branch, e.g.
``video/star/Charades_segment``; a ``video/data0613/<folder>`` copy is also looked at). A video may be a file or a
folder of frames (``fps`` 3 for the tvqa frame folders). The rows have no id field: sample ids are
``<file stem>/<row>`` = ``<task>/<row>``.
Prompt (lmms-eval/Pelican): ``Question:{q}\\nOption:\\n(A) ...\\n(B) ...\\n`` + post prompt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.adapters import LETTERS, build_docs, make_doc, option_letter, seconds, want
from benchmarks.data import require_dir, split_files
from benchmarks.doc import Doc
from benchmarks.task import TaskSpec
from dppo_embodied.types import VideoRef

#: task -> folder under video/ (the official DATA_LIST).
VIDEO_FOLDERS = {
    "object_interaction": "star/Charades_segment", "action_sequence": "star/Charades_segment",
    "action_prediction": "star/Charades_segment", "action_localization": "sta/sta_video_segment",
    "moving_count": "clevrer/video_validation", "fine_grained_pose": "nturgbd_convert",
    "character_order": "perception/videos", "object_shuffle": "perception/videos",
    "egocentric_navigation": "vlnqa", "moving_direction": "clevrer/video_validation",
    "episodic_reasoning": "tvqa/video_fps3_hq_segment", "fine_grained_action": "Moments_in_Time_Raw/videos",
    "scene_transition": "scene_qa/video", "state_change": "perception/videos",
    "moving_attribute": "clevrer/video_validation", "action_antonym": "ssv2_video_mp4",
    "unexpected_action": "FunQA_test/test", "counterfactual_inference": "clevrer/video_validation",
    "object_existence": "clevrer/video_validation", "action_count": "perception/videos",
}


def _video_path(root: Path, subtask: str, name: str) -> Path:
    folder = VIDEO_FOLDERS.get(subtask, subtask)
    for cand in (root / "video" / folder / name, root / "video" / "data0613" / folder / name):
        if cand.exists():
            return cand
    return root / "video" / folder / name


def load(spec: TaskSpec, root: Path, subtasks: tuple[str, ...] | None = None) -> list[Doc]:
    """The docs of the selected MVBench tasks, task by task in the official order."""
    require_dir(spec.task, root, spec.layout, spec.dataset_id)
    docs: list[Doc] = []
    for sub in spec.subtasks:
        if not want(subtasks, sub):
            continue
        for path, rows in split_files(spec, root, str(spec.adapter_options.get("split", "train")), sub):

            def build(i: int, row: dict[str, Any], doc_id: str, sub: str = sub) -> Doc:
                cands = [str(c) for c in row["candidates"]]
                target = option_letter(cands.index(str(row["answer"])), len(cands))
                options = "".join(f"({LETTERS[k]}) {c}\n" for k, c in enumerate(cands))
                prompt = f"{spec.prompt.pre}Question:{row['question']}\nOption:\n{options}{spec.prompt.post}"
                video = VideoRef(str(_video_path(root, sub, str(row["video"]))),
                                 fps=3.0 if "fps3" in VIDEO_FOLDERS.get(sub, "") else None,
                                 start=seconds(row.get("start")), end=seconds(row.get("end")))
                return make_doc(spec, doc_id, prompt, target, sub, video=video, meta={"candidates": cands})

            docs += build_docs(spec, rows, build, lambda i, row, stem=path.stem: f"{stem}/{i}", path.stem, sub,
                               source=path.name)
    return docs
