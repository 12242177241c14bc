"""Procedural embodied QA from the MuJoCo tabletop: answers read from simulator state or simulated rollouts.

    samples = generate("tabletop-qa", n=200, seed=0, out_dir=Path("data/qa"))          # all 9 capabilities
    held = generate("tabletop-qa", n=100, seed=0, split="heldout", out_dir=Path("data/qa-heldout"))
    replay = generate("replay", n=100, seed=0, out_dir=Path("data/replay"))           # forgetting checks

Determinism: sample ``k`` of ``(suite, seed, split)`` draws everything from
``numpy.random.default_rng([seed, split_id, k, suite_id])``; ``split="heldout"`` (split_id 1) is therefore a
disjoint seed stream from ``"train"`` (split_id 0) for the same ``seed``. Capabilities are assigned round-robin
(sample ``k`` gets ``capabilities[k % len(capabilities)]``), then a template of that capability is drawn.

Every sample carries ``capabilities`` (primary first), ``answer_type``, an oracle ``reasoning`` (short and true by
construction) and ``metadata``: ``template``, ``image_size`` ``[W, H]``, ``difficulty`` (the knobs used),
``num_objects``; ``mask`` (a PNG path) for points; ``horizon_s``, ``num_frames``, ``fps``, ``frame_times`` for
clips; ``unit`` ("cm") for numbers. Questions are self-contained (options live in ``sample.options``).
"""

from __future__ import annotations

import logging
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dppo_embodied.errors import ConfigError, DataError, UnknownNameError
from dppo_embodied.taxonomy import SLUGS, validate_capabilities
from dppo_embodied.types import EmbodiedSample, format_answer, write_samples
from envs.qa import dynamic, replay, static
from envs.qa.common import Difficulty, QAContext, Template

logger = logging.getLogger(__name__)

SPLITS = {"train": 0, "heldout": 1}
MAX_TRIES = 60


@dataclass(frozen=True)
class TemplateInfo:
    """A question template: its function and primary capability."""

    fn: Template
    capability: str


TABLETOP_TEMPLATES: dict[str, TemplateInfo] = {
    "color_of_shape": TemplateInfo(static.color_of_shape, "perception_grounding"),
    "shape_of_color": TemplateInfo(static.shape_of_color, "perception_grounding"),
    "point_to": TemplateInfo(static.point_to, "perception_grounding"),
    "exists": TemplateInfo(static.exists, "perception_grounding"),
    "count_color": TemplateInfo(static.count_color, "quantitative_numerical"),
    "count_shape": TemplateInfo(static.count_shape, "quantitative_numerical"),
    "count_all": TemplateInfo(static.count_all, "quantitative_numerical"),
    "distance_cm": TemplateInfo(static.distance_cm, "quantitative_numerical"),
    "height_cm": TemplateInfo(static.height_cm, "quantitative_numerical"),
    "left_of": TemplateInfo(static.left_of, "spatial_geometric"),
    "in_front_of": TemplateInfo(static.in_front_of, "spatial_geometric"),
    "nearest_object": TemplateInfo(static.nearest_object, "spatial_geometric"),
    "push_order": TemplateInfo(dynamic.push_order, "temporal_sequential"),
    "push_direction": TemplateInfo(dynamic.push_direction, "temporal_sequential"),
    "free_spot": TemplateInfo(static.free_spot, "affordance_function"),
    "stack_on": TemplateInfo(static.stack_on, "affordance_function"),
    "same_arrangement": TemplateInfo(static.same_arrangement, "multi_object_consistency"),
    "count_two_views": TemplateInfo(static.count_two_views, "multi_object_consistency"),
    "what_changed": TemplateInfo(static.what_changed, "multi_object_consistency"),
    "which_action": TemplateInfo(dynamic.which_action, "scene_action_understanding"),
    "stack_success": TemplateInfo(dynamic.stack_success, "scene_action_understanding"),
    "push_hits": TemplateInfo(dynamic.push_hits, "physical_causal"),
    "falls_off": TemplateInfo(dynamic.falls_off, "physical_causal"),
    "tower_plan": TemplateInfo(dynamic.tower_plan, "decision_planning"),
    "first_step": TemplateInfo(dynamic.first_step, "decision_planning"),
}
REPLAY_TEMPLATES: dict[str, TemplateInfo] = {
    "flat_color": TemplateInfo(replay.flat_color, "perception_grounding"),
    "flat_count": TemplateInfo(replay.flat_count, "quantitative_numerical"),
    "flat_largest": TemplateInfo(replay.flat_largest, "perception_grounding"),
    "flat_above": TemplateInfo(replay.flat_above, "spatial_geometric"),
    "flat_describe": TemplateInfo(replay.flat_describe, "perception_grounding"),
}
FLAT_TEMPLATES: dict[str, TemplateInfo] = {
    "flat_point": TemplateInfo(replay.flat_point, "perception_grounding"),
    "flat_count_color": TemplateInfo(replay.flat_count_color, "quantitative_numerical"),
    "flat_left_of": TemplateInfo(replay.flat_left_of, "spatial_geometric"),
    "flat_count_all": TemplateInfo(replay.flat_count_all, "quantitative_numerical"),
    "flat_majority": TemplateInfo(replay.flat_majority, "perception_grounding"),
    "flat_point_one": TemplateInfo(replay.flat_point_one, "perception_grounding"),
}
SUITES: dict[str, tuple[dict[str, TemplateInfo], str]] = {
    "tabletop-qa": (TABLETOP_TEMPLATES, "embodied QA over all 9 capabilities from the MuJoCo tabletop"),
    "replay": (REPLAY_TEMPLATES, "general perception on flat drawings (colour, count, size, position)"),
    "flat-qa": (FLAT_TEMPLATES, "verifiable tasks on the replay drawings: pointing into a shape, counting a colour "
                                "with reasoning, left/right (the CPU ablation regime)"),
}


class _Canvas:
    """Stand-in for a scene in suites that draw their own images (no MuJoCo)."""

    def __init__(self, size: int) -> None:
        self.width = self.height = size
        self.n_objects = 0


def _suite(name: str) -> dict[str, TemplateInfo]:
    if name not in SUITES:
        raise UnknownNameError("QA suite", name, SUITES)
    return SUITES[name][0]


def templates_for(suite: str, capabilities: list[str] | None = None) -> dict[str, list[str]]:
    """Template names of ``suite`` grouped by primary capability (only capabilities that have templates)."""
    out: dict[str, list[str]] = {}
    for name, info in _suite(suite).items():
        out.setdefault(info.capability, []).append(name)
    if capabilities is not None:
        caps = validate_capabilities(capabilities)
        missing = [c for c in caps if c not in out]
        if missing:
            raise ConfigError(f"suite {suite!r} has no templates for {missing}; it covers: {', '.join(sorted(out))}")
        return {c: out[c] for c in caps}  # the caller's order (round-robin assignment follows it)
    return {c: out[c] for c in SLUGS if c in out}


def generate(suite: str = "tabletop-qa", n: int = 100, seed: int = 0, capabilities: list[str] | None = None,
             difficulty: dict[str, Any] | None = None, out_dir: Path | str | None = None, image_size: int = 96,
             progress: bool = True, split: str = "train", videos: bool = False,
             templates: list[str] | None = None) -> list[EmbodiedSample]:
    """Generate ``n`` samples of ``suite``.

    Args:
        suite: ``"tabletop-qa"`` or ``"replay"``.
        n: number of samples.
        seed: base seed; sample ``k`` is a pure function of ``(suite, seed, split, k)`` and the options.
        capabilities: restrict to these capability slugs (default: every capability of the suite).
        difficulty: :class:`~envs.qa.common.Difficulty` knobs, e.g. ``{"n_objects": [2, 6], "clip_s": 4}``.
        out_dir: where images, masks and ``samples.jsonl`` go (default: a fresh temporary folder).
        image_size: square image size in pixels.
        progress: show a tqdm progress bar.
        split: ``"train"`` or ``"heldout"`` (a disjoint seed stream).
        videos: also write an MP4 per clip (``sample.video``); frames are always in ``sample.images``.
        templates: restrict to these template names.

    Returns:
        The samples, with absolute media paths.

    Raises:
        UnknownNameError: unknown suite or template.
        ConfigError: bad capability, difficulty, split, n or image size.
    """
    table = _suite(suite)
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    if not isinstance(n, int) or n < 0:
        raise ConfigError(f"n must be a non-negative integer, got {n!r}")
    if not isinstance(image_size, int) or not 32 <= image_size <= 1024:
        raise ConfigError(f"image_size must be an integer in 32..1024, got {image_size!r}")
    diff = Difficulty.from_dict(difficulty)
    groups = templates_for(suite, capabilities)
    if templates is not None:
        unknown = [t for t in templates if t not in table]
        if unknown:
            raise UnknownNameError("QA template", unknown[0], table)
        groups = {c: [t for t in names if t in templates] for c, names in groups.items()}
        groups = {c: names for c, names in groups.items() if names}
        if not groups:
            raise ConfigError(f"templates {templates} match none of the requested capabilities")
    caps = list(groups)
    out = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix=f"dppo-{suite}-"))
    media = out / "media"
    suite_id = zlib.crc32(suite.encode())
    scene: Any
    if suite in ("replay", "flat-qa"):
        scene = _Canvas(image_size)
    else:
        from envs.scene import TabletopScene

        scene = TabletopScene(image_size)
    samples: list[EmbodiedSample] = []
    try:
        it: Any = range(n)
        if progress:
            from tqdm import tqdm

            it = tqdm(it, desc=f"{suite} ({split})", unit="sample")
        for k in it:
            samples.append(_one(table, groups[caps[k % len(caps)]], scene, diff, suite, seed, split, k, suite_id,
                                media, videos))
    finally:
        if hasattr(scene, "close"):
            scene.close()
    if out_dir is not None:
        write_samples(samples, out / "samples.jsonl")
        logger.info("wrote %d samples to %s", len(samples), out / "samples.jsonl")
    return samples


def _one(table: dict[str, TemplateInfo], names: list[str], scene: Any, diff: Difficulty, suite: str, seed: int,
         split: str, k: int, suite_id: int, media: Path, videos: bool) -> EmbodiedSample:
    rng = np.random.default_rng([seed & 0xFFFFFFFF, SPLITS[split], k, suite_id])
    sample_id = f"{suite}/{split}/s{seed}/{k:06d}"
    for _ in range(MAX_TRIES):
        name = names[int(rng.integers(len(names)))]
        ctx = QAContext(rng, scene, diff, sample_id, media, suite, videos)
        s = table[name].fn(ctx)
        if s is not None:
            s.metadata["split"] = split
            return s
        for p in media.glob(f"{sample_id.replace('/', '_')}_*"):  # media of a rejected draw
            p.unlink()
    raise DataError(f"{sample_id}: no valid sample after {MAX_TRIES} scene draws with difficulty "
                    f"{diff.to_dict()}; loosen the difficulty (e.g. fewer objects)")


def question_templates(suite: str | None = None, n_per_template: int = 3, seed: int = 0) -> list[str]:
    """Representative question/answer/option texts (e.g. a tokenizer corpus for the tiny VLM).

    Generates ``n_per_template`` samples of every template (64-pixel images in a temporary folder) and returns
    their questions, options, canonical answers and reasoning texts, deduplicated, in a stable order.
    """
    texts: list[str] = []
    for s_name in [suite] if suite else list(SUITES):
        for t_name in _suite(s_name):
            with tempfile.TemporaryDirectory() as tmp:
                for s in generate(s_name, n_per_template, seed, templates=[t_name], out_dir=Path(tmp),
                                  image_size=64, progress=False, difficulty={"n_objects": [3, 4]}):
                    texts += [s.question, format_answer(s), *s.options, s.reasoning or ""]
    return [t for t in dict.fromkeys(texts) if t]


def suites() -> list[tuple[str, str]]:
    """``(name, help)`` of the QA suites."""
    return [(k, v[1]) for k, v in SUITES.items()]

