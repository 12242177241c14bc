"""EgoPlan-Bench2 (``nv-njb/egoplan-bench2``): 1,321 egocentric planning questions (4 options) over 24 scenarios.

Layout: ``EgoPlan-Bench2.json`` (or any ``*.json`` / ``*.jsonl`` at the root) with rows
``{sample_id, task_goal, choice_a..choice_d, golden_choice_idx ("A".."D"), domain/scenario, video}`` where
``video`` (or ``video_path``, else ``videos/<sample_id>.mp4``) is the task-progress clip, relative to the root,
with optional ``start``/``end`` seconds; an optional ``current_observation_frame`` image is shown after the clip.
Sample ids are ``sample_id``. Prompt: EgoPlan's question template (see :data:`TEMPLATE`) + post prompt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.adapters import build_docs, make_doc, seconds
from benchmarks.data import layout_error, read_json, read_jsonl, require_dir
from benchmarks.doc import Doc
from benchmarks.task import TaskSpec
from dppo_embodied.types import VideoRef

TEMPLATE = ("Considering the progress shown in the video and my current observation in the last frame, what action "
            "should I take next in order to {goal}?\nA. {a}\nB. {b}\nC. {c}\nD. {d}")


def _rows(root: Path) -> tuple[list[Any], Path]:
    for name in ("EgoPlan-Bench2.json", "egoplan_bench2.json"):
        if (root / name).is_file():
            data = read_json(root / name)
            return (data if isinstance(data, list) else []), root / name
    files = sorted([*root.glob("*.json"), *root.glob("*.jsonl")])
    if not files:
        return [], root
    if files[0].suffix == ".jsonl":
        return list(read_jsonl(files[0])), files[0]
    data = read_json(files[0])
    return (data if isinstance(data, list) else []), files[0]


def load(spec: TaskSpec, root: Path, subtasks: tuple[str, ...] | None = None) -> list[Doc]:
    """The EgoPlan-Bench2 docs."""
    require_dir(spec.task, root, spec.layout, spec.dataset_id)
    rows, path = _rows(root)
    if not rows:
        raise layout_error(spec.task, root, spec.layout, spec.dataset_id, "no question file")

    def build(i: int, row: dict[str, Any], doc_id: str) -> Doc:
        text = TEMPLATE.format(goal=str(row["task_goal"]).strip().rstrip("."), a=row["choice_a"], b=row["choice_b"],
                               c=row["choice_c"], d=row["choice_d"])
        target = str(row["golden_choice_idx"]).strip().upper()
        rel = row.get("video") or row.get("video_path") or f"videos/{row.get('sample_id', i)}.mp4"
        video = VideoRef(str(root / str(rel)), start=seconds(row.get("start")), end=seconds(row.get("end")))
        images = [str(root / str(row["current_observation_frame"]))] if row.get("current_observation_frame") else []
        meta = {"scenario": row.get("scenario", row.get("domain"))}
        return make_doc(spec, doc_id, spec.apply_prompt(text), target, video=video, images=images, meta=meta)

    return build_docs(spec, rows, build, lambda i, row: row.get("sample_id", f"{path.stem}/{i}"), path.stem,
                      source=path.name)

