"""EgoSchema (``lmms-lab/egoschema``): ~3-minute egocentric clips with 5-way questions.

Layout (the dataset card, ``lmms-lab/egoschema``): configs ``GENERATION``, ``MC``, ``MC_PPL`` (all 5,031 questions,
answers hidden; task ``egoschema`` reads ``GENERATION``) and ``Subset`` (the 500 answered ones, task
``egoschema_subset``), each with one split ``test`` = ``<Config>/test-*`` (parquet rows ``{question_idx, question,
video_idx, option (5 strings "A. ..."), answer ("0".."4")}``), and the clips ``videos/<video_idx>.mp4`` unzipped
from ``videos_chunked_*.zip`` (``all_videos/`` and ``.MP4`` are also looked at). Sample ids are ``video_idx`` (the
official ``q_uid``, one question per clip), else ``<Config>/<row>``.
Prompt: question, then each option on its own line, then the post prompt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.adapters import build_docs, make_doc, row_id
from benchmarks.data import split_rows
from benchmarks.doc import Doc
from benchmarks.task import TaskSpec
from dppo_embodied.types import VideoRef


def _video(root: Path, video_idx: str) -> Path:
    for folder in ("videos", "all_videos", "."):
        for ext in (".mp4", ".MP4"):
            p = root / folder / f"{video_idx}{ext}"
            if p.exists():
                return p
    return root / "videos" / f"{video_idx}.mp4"


def load(spec: TaskSpec, root: Path, subtasks: tuple[str, ...] | None = None) -> list[Doc]:
    """The EgoSchema docs of the configured subset (``adapter_options.config``)."""
    config = str(spec.adapter_options.get("config", "Subset"))
    rows = split_rows(spec, root, "test", config)

    def build(i: int, row: dict[str, Any], vid: str) -> Doc:
        options = [str(o) for o in row["option"]]
        text = str(row["question"]) + "".join("\n" + o for o in options)
        answer = row.get("answer")
        target = None if answer in (None, "") else str(answer)
        return make_doc(spec, vid, spec.apply_prompt(text), target, video=VideoRef(str(_video(root, vid))),
                        meta={"options": options, "video_idx": vid})

    return build_docs(spec, rows, build, lambda i, row: row_id(row, "video_idx", f"{config}/{i}"), config)
