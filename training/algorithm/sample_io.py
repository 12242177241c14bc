"""From an :class:`~dppo_embodied.types.EmbodiedSample` to TRL rows, through the core's one sample contract.

Difficulty and diagnosis rollouts, GRPO prompts, SFT rows and teacher requests all render a sample with
:func:`dppo_embodied.rendering.render_sample` (one :class:`~dppo_embodied.conversation.Conversation`: the prompt
text, video frames then images from the one media loader :class:`dppo_embodied.media.MediaLoader`), exactly as
``dppo eval`` and the metaloop's held-out evaluation do; SFT targets come from the one builder
:func:`dppo_embodied.answer_text.target_text`. A TRL row is the conversation's
:meth:`~dppo_embodied.conversation.Conversation.chat_messages` (``prompt``) plus its images (``images``), TRL's
conversational multimodal format (videos are frame lists: TRL's GRPO has no video input, trl#4144). Missing or
corrupt media raise :class:`~dppo_embodied.errors.MediaError`; :func:`loadable` turns that into "skip with the
reason logged".
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dppo_embodied.answer_text import target_text
from dppo_embodied.conversation import Conversation
from dppo_embodied.errors import MediaError
from dppo_embodied.media import MediaLoader
from dppo_embodied.rendering import prompt_text
from dppo_embodied.types import EmbodiedSample, format_answer, load_samples
from training.algorithm.data_sources import GENERAL_EVAL

logger = logging.getLogger(__name__)


def oracle_target(sample: EmbodiedSample, with_reasoning: bool = False) -> str:
    """The sample's oracle SFT target: :func:`~dppo_embodied.answer_text.target_text` of its canonical answer (and
    its reasoning when ``with_reasoning``)."""
    return target_text(format_answer(sample), sample.reasoning if with_reasoning else None)


def prompt_row(conv: Conversation) -> dict[str, Any]:
    """A TRL conversational prompt row: ``prompt`` (chat messages with image placeholders) and ``images``."""
    return {"prompt": conv.chat_messages(), "images": list(conv.images)}


def task_of(sample: EmbodiedSample) -> str:
    """The task a sample belongs to (buffer caps and per-task saturation): template, task, or source + type."""
    md = sample.metadata
    for key in ("task", "template"):
        if md.get(key):
            return str(md[key])
    return f"{sample.source}:{sample.answer_type.value}"


def horizon_of(sample: EmbodiedSample, unit: str = "seconds") -> float | None:
    """The sample's temporal horizon in ``unit`` (seconds, frames or steps), or None when it has none."""
    md = sample.metadata
    if unit == "seconds":
        return sample.horizon_s
    if unit == "frames":
        if "num_frames" in md:
            return float(md["num_frames"])
        if sample.video is not None and sample.video.num_frames:
            return float(sample.video.num_frames)
        return float(len(sample.images)) if len(sample.images) > 1 else None
    if "max_steps" in md or "num_steps" in md:
        return float(md.get("max_steps", md.get("num_steps")))
    return None


def loadable(samples: Iterable[EmbodiedSample], loader: MediaLoader | None = None,
             skipped: list[dict[str, str]] | None = None) -> list[EmbodiedSample]:
    """The samples whose media load; the others are skipped with the reason logged (and appended to ``skipped``)."""
    loader = loader or MediaLoader()
    ok = []
    for s in samples:
        try:
            loader.load(s)
        except MediaError as e:
            logger.warning("skipping sample %s: %s", s.id, e)
            if skipped is not None:
                skipped.append({"id": s.id, "reason": str(e)})
            continue
        ok.append(s)
    return ok


def tokenizer_corpus(data_dir: Path, with_env: bool = False) -> list[str]:
    """Texts for the tiny model's tokenizer: prompts and targets of every generated sample (and env prompts), except
    the forgetting check's general samples (``general_eval.jsonl``: evaluation data, which must not shape the model;
    leaving them out also keeps every tiny model what it was before that file existed)."""
    texts: list[str] = []
    if with_env:
        from dppo_embodied.prompts import ACTION_EXAMPLES, build_step_prompt, system_prompt

        texts += [system_prompt(), build_step_prompt("Pick up the red block.", "Last action succeeded: done",
                                                     skills=("pick", "place", "push")), *ACTION_EXAMPLES.values()] * 20
        texts += [f'{{"action": {{"type": "skill", "name": "pick", "object": "{c}_{s}"}}}}'
                  for c in ("red", "green", "blue", "yellow", "orange", "purple")
                  for s in ("block", "ball", "cylinder")]
    for p in sorted(data_dir.glob("*.jsonl")):
        if p.stem == GENERAL_EVAL:
            continue
        for s in load_samples(p)[0]:
            texts.append(prompt_text(s))
            texts.append(oracle_target(s, with_reasoning=True))
    return texts

