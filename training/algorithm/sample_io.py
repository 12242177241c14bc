"""From an :class:`~dppo_embodied.types.EmbodiedSample` to model inputs and SFT targets, one definition for all.

Difficulty estimation, GRPO prompts, diagnosis, evaluation, teacher requests and SFT rows all render a sample with
:func:`prompt_text` and load its media with :class:`MediaLoader`, so the model sees the same prompt everywhere.
Videos are fed as a list of frames (TRL's GRPO has no video input, trl#4144). Missing or corrupt media raise
:class:`~dppo_embodied.errors.MediaError`; :func:`loadable` turns that into "skip with the reason logged".
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.adapters.tabletop_qa import prompt_text  # one prompt for eval and training
from dppo_embodied.errors import MediaError
from dppo_embodied.types import EmbodiedSample, format_answer, load_samples

logger = logging.getLogger(__name__)

def target_text(sample: EmbodiedSample, reasoning: str | None = None, answer: str | None = None) -> str:
    """The SFT target: ``<think>reasoning</think><answer>answer</answer>`` (think part only with reasoning)."""
    ans = format_answer(sample) if answer is None else answer
    think = f"<think>{reasoning.strip()}</think>" if reasoning else ""
    return f"{think}<answer>{ans}</answer>"


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


class MediaLoader:
    """Loads a sample's images (or video frames) as RGB PIL images, with a small LRU cache.

    Args:
        max_frames: frames sampled uniformly from a video.
        cache_size: images kept in memory.
    """

    def __init__(self, max_frames: int = 8, cache_size: int = 4096) -> None:
        self.max_frames, self.cache_size = max_frames, cache_size
        self._cache: OrderedDict[str, Any] = OrderedDict()

    def _image(self, path: str) -> Any:
        from PIL import Image, UnidentifiedImageError

        if path in self._cache:
            self._cache.move_to_end(path)
            return self._cache[path]
        try:
            with Image.open(path) as im:
                img = im.convert("RGB")
        except FileNotFoundError as e:
            raise MediaError(f"image {path} does not exist") from e
        except (OSError, UnidentifiedImageError, ValueError) as e:
            raise MediaError(f"image {path} is unreadable ({e})") from e
        self._cache[path] = img
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return img

    def _video(self, sample: EmbodiedSample) -> list[Any]:
        from PIL import Image

        assert sample.video is not None
        try:
            import imageio.v3 as iio

            frames = iio.imread(sample.video.path, index=None)
        except FileNotFoundError as e:
            raise MediaError(f"video {sample.video.path} does not exist") from e
        except Exception as e:  # imageio raises many types for corrupt files
            raise MediaError(f"video {sample.video.path} is unreadable ({e})") from e
        fps = sample.video.fps or 1.0
        lo = int((sample.video.start or 0) * fps)
        hi = int(sample.video.end * fps) if sample.video.end is not None else len(frames)
        frames = frames[max(0, lo): max(lo + 1, hi)]
        if len(frames) == 0:
            raise MediaError(f"video {sample.video.path} has no frames in [{sample.video.start}, {sample.video.end}]")
        n = min(self.max_frames, len(frames))
        idx = [round(i * (len(frames) - 1) / max(1, n - 1)) for i in range(n)]
        return [Image.fromarray(frames[i]).convert("RGB") for i in idx]

    def load(self, sample: EmbodiedSample) -> list[Any]:
        """All images of a sample (video frames after the listed images).

        Raises:
            MediaError: naming the missing or unreadable file.
        """
        images = [self._image(p) for p in sample.images]
        if sample.video is not None:
            images += self._video(sample)
        return images


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


def conversation(sample: EmbodiedSample, n_images: int, system: str | None = None) -> list[dict[str, Any]]:
    """TRL conversational prompt: ``{"type": "image"}`` placeholders then the text (system message optional)."""
    content: list[dict[str, Any]] = [{"type": "image"} for _ in range(n_images)]
    content.append({"type": "text", "text": prompt_text(sample)})
    msgs: list[dict[str, Any]] = []
    if system:
        msgs.append({"role": "system", "content": [{"type": "text", "text": system}]})
    msgs.append({"role": "user", "content": content})
    return msgs


def requests_for(samples: Sequence[EmbodiedSample], loader: MediaLoader) -> list[Any]:
    """:class:`inference.policy.ChatRequest` per sample (media must load; filter with :func:`loadable` first)."""
    from inference.policy import ChatRequest

    return [ChatRequest(prompt_text(s), images=loader.load(s)) for s in samples]


def tokenizer_corpus(data_dir: Path, with_env: bool = False) -> list[str]:
    """Texts for the tiny model's tokenizer: prompts and targets of every generated sample (and env prompts)."""
    texts: list[str] = []
    if with_env:
        from dppo_embodied.prompts import ACTION_EXAMPLES, build_step_prompt, system_prompt

        texts += [system_prompt(), build_step_prompt("Pick up the red block.", "Last action succeeded: done",
                                                     skills=("pick", "place", "push")), *ACTION_EXAMPLES.values()] * 20
        texts += [f'{{"action": {{"type": "skill", "name": "pick", "object": "{c}_{s}"}}}}'
                  for c in ("red", "green", "blue", "yellow", "orange", "purple")
                  for s in ("block", "ball", "cylinder")]
    for p in sorted(data_dir.glob("*.jsonl")):
        for s in load_samples(p)[0]:
            texts.append(prompt_text(s))
            texts.append(target_text(s, s.reasoning))
    return texts

