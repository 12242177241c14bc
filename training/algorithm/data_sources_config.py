"""Settings of the data sources (``data:`` in a recipe): candidates, held-out, general replay, closed-loop tasks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from dppo_embodied.config import check
from dppo_embodied.taxonomy import SLUGS

IMAGE_SIZE_RANGE = (32, 1024)
"""Generated image sides (pixels) that ``envs.qa.generate`` accepts; checked here so a recipe fails when loaded."""


def check_templates(suite: str | None, templates: list[str], capabilities: list[str],
                    key: str = "data.templates") -> None:
    """Template names (``key``: ``data.templates``, ``pretrain.task_templates``) against the templates of an
    ``envs.qa`` suite (skipped for custom generators)."""
    if not templates or not suite or ":" in suite:
        return
    try:
        from envs.qa import SUITES, templates_for
    except ImportError:  # envs (the sim extra) not installed: --dry-run warns, the run fails when generating
        return
    if suite not in SUITES:
        return
    valid = templates_for(suite)
    names = sorted(t for group in valid.values() for t in group)
    for i, t in enumerate(templates):
        check(t in names, f"{key}[{i}]", f"unknown template {t!r} of suite {suite!r}; valid: "
              f"{', '.join(names)}")
    if capabilities:
        usable = [t for c in capabilities for t in valid.get(c, []) if t in templates]
        check(bool(usable), "data.templates", f"none of {templates} belongs to data.capabilities {capabilities}")


@dataclass
class DataSettings:
    """Where candidates, held-out and general-replay samples come from.

    Either JSONL files (``train``/``heldout``/``general``, read with :func:`dppo_embodied.types.load_samples`) or the
    procedural generator :func:`envs.qa.generate` (``generator``), which also lets the SFT phase synthesise fresh
    D_assoc samples for weak capabilities.

    Attributes:
        generator: envs.qa suite for candidates and held-out (``tabletop-qa``), or None to use files only.
        general_suite: envs.qa suite of the general replay set (D_gen), when ``general`` is not a file.
        train: JSONL of the candidate pool (overrides the generator for candidates).
        heldout: JSONL of the held-out split.
        general: JSONL of the general replay set.
        general_eval: JSONL of the general samples the forgetting check scores (none of them trained on);
            generated from ``general_suite``'s evaluation stream when ``general`` is generated.
        n_train: candidates generated.
        n_heldout: held-out samples generated (a disjoint seed range).
        n_general: general replay samples generated (and as many general-evaluation samples).
        capabilities: restrict generated samples to these capability slugs (empty: all).
        templates: restrict generated samples to these question templates (``metadata["template"]``; empty: all).
        image_size: generated image side in pixels.
        frames: video frames sampled per clip for the model (training rows, rollouts, teacher, held-out evaluation;
            the official evaluations use 32, ``dppo eval --frames``).
        seed: generator seed (held-out and synthesis use disjoint derived seeds).
        env_tasks: closed-loop gymnasium ids (``dppo/TabletopPick-v0``) trained with whole episodes as rollouts.
        env_seeds: candidate seeds per closed-loop task.
        env_heldout_seeds: held-out seeds per closed-loop task.
        env_max_steps: episode step cap.
        env_oracle: demonstrations of closed-loop failures: ``expert`` (the scripted expert's actions) or
            ``skills`` (one named-skill call where that solves the task: pick, push onto the target disc; the
            expert otherwise).
        env_prompt: the closed-loop step prompt style the model is trained with: ``full`` (the shared
            action-envelope system prompt, for real VLMs) or ``compact`` (a one-line system prompt, for tiny models
            that learn the envelope from demonstrations). Recorded beside every checkpoint's weights
            (``dppo_step_prompt.json``), where ``dppo eval`` and ``dppo bridge --step-prompt`` find it.
        difficulty: generator difficulty knobs for every generated split (``envs.qa`` ``Difficulty``, e.g.
            ``{n_objects: [1, 3]}``; passed when the generator accepts ``difficulty``).
        eval_split: what the run evaluates on: ``heldout`` (reported numbers) or ``validation`` (a third disjoint
            seed stream, for tuning; docs/ablation.md: tune only on validation).
    """

    generator: str | None = "tabletop-qa"
    general_suite: str = "replay"
    train: str | None = None
    heldout: str | None = None
    general: str | None = None
    general_eval: str | None = None
    n_train: int = 600
    n_heldout: int = 300
    n_general: int = 300
    capabilities: list[str] = field(default_factory=list)
    templates: list[str] = field(default_factory=list)
    image_size: int = 96
    frames: int = 8
    seed: int = 0
    env_tasks: list[str] = field(default_factory=list)
    env_seeds: int = 16
    env_heldout_seeds: int = 16
    env_max_steps: int = 6
    env_oracle: Literal["expert", "skills"] = "expert"
    env_prompt: Literal["full", "compact"] = "full"
    difficulty: dict[str, Any] = field(default_factory=dict)
    eval_split: Literal["heldout", "validation"] = "heldout"

    def __post_init__(self) -> None:
        check(self.generator is not None or self.train is not None, "data.train",
              "set data.train (a JSONL file) or data.generator (e.g. tabletop-qa)")
        check(isinstance(self.frames, int) and self.frames >= 1, "data.frames",
              f"must be a positive number of video frames, got {self.frames!r}")
        for key in ("n_train", "n_heldout", "n_general", "env_seeds", "env_heldout_seeds", "env_max_steps"):
            v = getattr(self, key)
            check(isinstance(v, int) and v >= 0, f"data.{key}", f"must be a non-negative integer, got {v!r}")
        lo, hi = IMAGE_SIZE_RANGE
        check(isinstance(self.image_size, int) and lo <= self.image_size <= hi, "data.image_size",
              f"must be an integer number of pixels in {lo}..{hi}, got {self.image_size!r}")
        for i, c in enumerate(self.capabilities):
            check(c in SLUGS, f"data.capabilities[{i}]", f"unknown capability {c!r}; valid: {', '.join(SLUGS)}")
        for i, t in enumerate(self.templates):
            check(isinstance(t, str) and bool(t.strip()), f"data.templates[{i}]",
                  f"must be a template name, got {t!r}")
        check_templates(self.generator, self.templates, self.capabilities)
