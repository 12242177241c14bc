"""The variants of ``dppo train compare`` and the named presets (the seed's experiments as one command each).

A *variant* is a set of recipe overrides plus how its budgets are matched to DPPO's (docs/ablation.md):

* ``matched``: on the compute axis the variant may spend DPPO's compute C (``compute_budget_s``; its loop count is
  raised so the budget, not the loop count, ends it); on the teacher axis it also gets DPPO's teacher calls B
  (``teacher.budget``) — both budgets equal.
* ``free``: the variant runs its own schedule (the same loops as DPPO) and reports what it spent (sweeps of DPPO's
  own knobs: stop threshold, reward noise, teacher quality).

``dppo`` is always the reference and runs first (per seed): its measured C and B set the other variants' budgets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from dppo_embodied.errors import ConfigError

Matching = Literal["matched", "free"]


@dataclass(frozen=True)
class Variant:
    """One arm of a comparison.

    Attributes:
        name: variant name (``paired`` keys are ``dppo-<name>``).
        overrides: recipe overrides (``key=value``).
        matching: how its budgets relate to DPPO's (module docstring).
        sft_samples: ``per_loop`` / ``all``: this variant buys ``sft.teacher_samples`` = B / K per SFT phase, or B at
            once (``sft_then_rl``); ``none`` otherwise.
        help: one line for ``--help`` and compare.md.
    """

    name: str
    overrides: tuple[str, ...] = ()
    matching: Matching = "matched"
    sft_samples: Literal["none", "per_loop", "all"] = "none"
    help: str = ""


#: the protocol's arms (docs/ablation.md)
VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("dppo", ("mode=dppo", "sampling=difficulty"), "free", help="DPPO: RL -> diagnose -> targeted SFT"),
    Variant("dppo_random", ("mode=dppo", "sampling=random"), help="DPPO with a random RL buffer"),
    Variant("grpo_only", ("mode=grpo_only", "sampling=difficulty"), help="RL only (no teacher)"),
    Variant("sft_only", ("mode=sft_only",), sft_samples="per_loop",
            help="SFT on teacher targets of random candidates, DPPO's teacher budget"),
    Variant("sft_then_rl", ("mode=sft_then_rl", "sampling=difficulty"), sft_samples="all",
            help="one SFT phase on DPPO's teacher budget (random candidates), then RL"),
    Variant("relift", ("mode=dppo", "sampling=difficulty", "difficulty.failure_sr=0.01", "sft.ratios=[1,0,1]",
                       "sft.synthesize_assoc=false"),
            help="ReLIFT-style: RL, then SFT on teacher solutions of never-solved prompts only"),
    Variant("sft_pool", ("mode=sft_pool",), help="reference outside the budget: answer SFT on the whole pool"),
    Variant("rft", ("mode=rft", "sampling=difficulty"),
            help="rejection-sampling fine-tuning: SFT on own verified rollouts + replay; no RL, no teacher"),
)}

MAIN = ("dppo", "dppo_random", "grpo_only", "sft_only", "sft_then_rl", "relift", "sft_pool")


@dataclass(frozen=True)
class Preset:
    """A named experiment: its variants (``dppo`` first) and the axis it is read on."""

    name: str
    variants: tuple[Variant, ...]
    axis: Literal["compute", "teacher"] = "teacher"
    help: str = ""
    scale: dict[str, float] = field(default_factory=dict)


def _free(name: str, *overrides: str, help: str = "") -> Variant:
    return Variant(name, ("mode=dppo", "sampling=difficulty", *overrides), "free", help=help)


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("main", tuple(VARIANTS[v] for v in MAIN), "teacher", "the protocol's comparison (docs/ablation.md)"),
    Preset("sampling", (VARIANTS["dppo"], VARIANTS["dppo_random"]), "compute",
           "difficulty-aware vs random RL buffer at equal compute"),
    Preset("loops", (VARIANTS["dppo"], Variant("one_loop", ("mode=dppo", "sampling=difficulty", "loops=1"),
                                                 help="one metaloop with 3x the phase budgets")),
           "compute", "one metaloop against three, at equal compute"),
    Preset("stagnation", (VARIANTS["dppo"], *(_free(f"ts{t}", f"grpo.stagnation.threshold={t}",
                                                    help=f"stop threshold {t}") for t in (0.5, 0.6, 0.8, 0.9))),
           "teacher", "stagnation stop threshold sweep (dppo = 0.7)"),
    Preset("reward_noise", (VARIANTS["dppo"], *(_free(f"noise{int(p * 100)}", f"grpo.reward_noise={p}",
                                                      help=f"{int(p * 100)} % of RL rewards flipped")
                                                for p in (0.1, 0.25, 0.5))),
           "teacher", "RL reward noise injection (dppo = clean)"),
    Preset("teacher", (VARIANTS["dppo"],
                       _free("teacher_noisy", "teacher.accuracy=0.75", help="teacher right 75 % of the time"),
                       _free("teacher_weak", "teacher.accuracy=0.4", help="teacher right 40 % of the time"),
                       Variant("sft_only_weak", ("mode=sft_only", "teacher.accuracy=0.4"), sft_samples="per_loop",
                               help="SFT-only with the weak teacher, DPPO's budget")),
           "teacher", "teacher quality: perfect / noisy / weak"),
)}


def resolve(preset: str | None, names: list[str] | None) -> tuple[list[Variant], str | None]:
    """The variants to run (``dppo`` first) and the preset's default axis.

    Raises:
        ConfigError: unknown preset or variant.
    """
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; valid: {', '.join(PRESETS)}")
        p = PRESETS[preset]
        chosen = [v for v in p.variants if not names or v.name in names]
        return ([VARIANTS["dppo"]] + [v for v in chosen if v.name != "dppo"]), p.axis
    names = names or list(MAIN)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise ConfigError(f"unknown variant(s) {unknown}; valid: {', '.join(VARIANTS)} (or --preset "
                          f"{'|'.join(PRESETS)})")
    return [VARIANTS["dppo"]] + [VARIANTS[n] for n in names if n != "dppo"], None


def budget_overrides(v: Variant, axis: str, cfg: Any, compute_s: float, teacher_calls: int,
                     loop_cap: int | None = None) -> list[str]:
    """The overrides that give variant ``v`` its budgets, from DPPO's measured ``compute_s`` and ``teacher_calls``.

    Args:
        v: the variant.
        axis: ``compute`` or ``teacher``.
        cfg: the resolved recipe (loops, phase budgets).
        compute_s: DPPO's training compute on this seed.
        teacher_calls: DPPO's teacher calls on this seed.
        loop_cap: most loops a matched variant may run (default max(4K, 40), so that the budget ends it).
    """
    out: list[str] = []
    k = cfg.loops
    if v.name == "one_loop":  # the same work in one loop: 3x (K x) the phase budgets
        out += [f"grpo.max_steps={cfg.grpo.max_steps * k}", f"sft.max_steps={cfg.sft.max_steps * k}",
                f"sft.size={cfg.sft.size * k}", f"sft.synthesize_n={cfg.sft.synthesize_n * k}",
                f"sft.focus_steps={cfg.sft.focus_steps * k}"]
    if v.sft_samples == "per_loop":
        out.append(f"sft.teacher_samples={max(1, math.ceil(teacher_calls / max(1, k)))}")
    elif v.sft_samples == "all":
        out.append(f"sft.teacher_samples={max(1, teacher_calls)}")
    if v.name == "dppo" or v.matching == "free":
        return out
    out += [f"compute_budget_s={compute_s:.3f}", f"loops={loop_cap if loop_cap else max(k * 4, 40)}"]
    if axis == "teacher" and v.name != "sft_pool":
        out.append(f"teacher.budget={max(1, teacher_calls)}")
    return out
