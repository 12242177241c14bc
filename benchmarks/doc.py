"""The unit of evaluation: one :class:`Doc` per benchmark question, built by an adapter from the dataset files.

A doc carries everything the runner needs to ask the model (prompt text, image and video references) and
everything a scorer needs to score the answer (``target`` and ``meta``), without having decoded any media:
images are paths, raw bytes or already-decoded PIL images (from a parquet column), and videos are
:class:`~dppo_embodied.types.VideoRef` paths, so ``dppo eval score`` works without the media files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dppo_embodied.types import VideoRef

#: An image reference: a file path, encoded bytes (PNG/JPEG...), or a decoded ``PIL.Image.Image``.
ImageRef = Any


@dataclass
class Doc:
    """One benchmark question.

    Attributes:
        id: stable unique id: the dataset's own id field, else ``<subset>/<row>`` (file stem or config/split name,
            0-based row in that file).
        task: the task name (``"mvbench"``).
        subtask: the official subtask (``"action_sequence"``) or ``None``.
        prompt: the exact user text sent to the model (pre/post prompts applied).
        images: image references, in the order they are shown (before the text).
        video: an optional video clip; the runner samples frames from it and shows them before the images.
        system: an optional system prompt.
        target: the ground truth, in the form the task's scorer expects.
        meta: scoring extras (options, mask reference, split, category, ...).
        capabilities: capability slugs (from the task's per-subtask mapping).
        error: set when the row is malformed; the runner records the sample as failed with this reason.
    """

    id: str
    task: str
    prompt: str
    target: Any = None
    subtask: str | None = None
    images: list[ImageRef] = field(default_factory=list)
    video: VideoRef | None = None
    system: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    capabilities: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def full_subtask(self) -> str:
        """``<task>_<subtask>`` (the official subtask task name), or the task name without a subtask."""
        return f"{self.task}_{self.subtask}" if self.subtask else self.task
