"""The step plan of a run, built once from the recipe: which steps run, in which order, for every ``mode``.

``plan(cfg)`` is a pure function: the metaloop (:mod:`training.metaloop`) iterates its steps, and the ablations
differ only in the table :data:`LOOP_STEPS` below (tested per mode), not in tests scattered through the run.

=============  ==========================================================================================
``dppo``       difficulty -> rl -> [eval_rl] -> diagnosis -> sft (diagnosed failures + retrieval) -> eval
``grpo_only``  difficulty -> rl -> eval
``sft_only``   sft (teacher targets of ``sft.teacher_samples`` random candidates per loop, all paid ones) -> eval
``sft_then_rl`` loop 1: sft (as ``sft_only``) -> difficulty -> rl -> eval; later loops: difficulty -> rl -> eval
``sft_pool``   sft (answer targets of the whole candidate pool and every episode's demonstrations) -> eval
``rft``        difficulty -> sft (the policy's own verified rollouts, D_self, + general replay; no teacher) -> eval
=============  ==========================================================================================

The ReLIFT-style variant of ``dppo train compare`` is ``dppo`` with ``difficulty.failure_sr`` just above 0 (SFT only
on never-solved prompts; :mod:`training.scripts.ablation_presets`).

With ``final_rl`` a ``dppo`` run ends with one more RL half-step: ``k{K+1}/difficulty -> rl -> eval``.

Every run starts with ``prepare``, ``pretrain`` (when ``pretrain.steps > 0``) and ``eval_base``. Step names are the
keys of ``state.json`` (``k2/rl``), so a resumed run skips exactly the steps it committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from training.metaloop_config import MetaloopConfig, Mode

Kind = Literal["prepare", "pretrain", "eval", "difficulty", "rl", "diagnosis", "sft", "sft_random", "sft_pool",
               "sft_self"]


@dataclass(frozen=True)
class Step:
    """One step of a run.

    Attributes:
        name: its key in ``state.json`` (``prepare``, ``eval_base``, ``k1/difficulty``, ...).
        kind: what the metaloop does (``sft`` trains on the diagnosed failures, ``sft_random`` on teacher targets of
            random candidates, ``sft_pool`` on the whole labelled pool, ``sft_self`` on the policy's own verified
            rollouts).
        loop: metaloop iteration k (1-based; 0 before the metaloop).
        tag: evaluation tag (``base``, ``k1-rl``, ``k1``) for ``eval`` steps.
    """

    name: str
    kind: Kind
    loop: int = 0
    tag: str = ""


#: mode -> the steps of one metaloop iteration, in order (``eval_rl`` only with ``eval.every_phase``; a kind ending
#: in ``@1`` only in the first iteration).
LOOP_STEPS: dict[Mode, tuple[str, ...]] = {
    "dppo": ("difficulty", "rl", "eval_rl", "diagnosis", "sft", "eval"),
    "grpo_only": ("difficulty", "rl", "eval"),
    "sft_only": ("sft_random", "eval"),
    "sft_then_rl": ("sft_random@1", "difficulty", "rl", "eval"),
    "sft_pool": ("sft_pool", "eval"),
    "rft": ("difficulty", "sft_self", "eval"),
}


def loop_steps(cfg: MetaloopConfig, k: int) -> list[Step]:
    """The steps of metaloop iteration ``k`` (1-based)."""
    steps = []
    for kind in LOOP_STEPS[cfg.mode]:
        kind, _, only = kind.partition("@")
        if only and int(only) != k:
            continue
        if kind == "eval_rl":
            if cfg.eval.every_phase:
                steps.append(Step(f"k{k}/eval_rl", "eval", k, tag=f"k{k}-rl"))
        elif kind == "eval":
            steps.append(Step(f"k{k}/eval", "eval", k, tag=f"k{k}"))
        elif kind in ("sft_random", "sft_pool", "sft_self"):
            steps.append(Step(f"k{k}/sft", kind, k))  # type: ignore[arg-type]
        else:
            steps.append(Step(f"k{k}/{kind}", kind, k))  # type: ignore[arg-type]
    return steps


def plan(cfg: MetaloopConfig) -> list[Step]:
    """Every step of the run, in order."""
    steps = [Step("prepare", "prepare")]
    if cfg.pretrain.steps > 0:
        steps.append(Step("pretrain", "pretrain"))
    steps.append(Step("eval_base", "eval", tag="base"))
    for k in range(1, cfg.loops + 1):
        steps += loop_steps(cfg, k)
    if cfg.final_rl and cfg.mode == "dppo":  # the closing RL half-step (MetaloopConfig.final_rl)
        k = cfg.loops + 1
        steps += [Step(f"k{k}/difficulty", "difficulty", k), Step(f"k{k}/rl", "rl", k),
                  Step(f"k{k}/eval", "eval", k, tag=f"k{k}")]
    return steps
