"""How long a run will take, before it runs: ``dppo train --dry-run`` and ``dppo train compare --dry-run`` print it.

The estimate counts the work of each step of the plan (:func:`training.plan.plan`): samples generated, rollouts x
tokens of the difficulty estimation, diagnosis and evaluations, GRPO completions x tokens, SFT samples trained, and
multiplies by per-unit costs measured with the offline tiny models on 2 CPU cores (``make demo`` and
``training/recipes/smoke.yaml``; a busy machine is slower, by up to x2 on a shared one). It is an order of
magnitude for tiny-model recipes; for a real checkpoint (``model.path``) no CPU figure means anything and the
estimate says so (measure GPU throughput with ``training/scripts/gpu_bench.py``).
"""

from __future__ import annotations

from typing import Any

from training.metaloop_config import MetaloopConfig
from training.plan import plan

#: seconds per unit, tiny model ("tiny"/"demo" sizes) on 2 CPU cores
COSTS: dict[str, float] = {
    "startup": 10.0,  # imports, tiny model build
    "generate_sample": 0.01,  # one QA sample rendered by the simulator
    "gen_token": 0.0025,  # one generated token of one sequence in a batch (rollouts, evaluation)
    "episode_step": 0.05,  # one closed-loop step: render + action (besides its generated tokens)
    "sft_sample": 0.02,  # one SFT/pre-training sample (forward + backward)
    "grpo_token": 0.003,  # one completion token in a GRPO step (generation + policy update)
    "eval_overhead": 1.0,  # per evaluation (records, scoring, results.json)
}
#: model sizes the costs were measured on
CALIBRATED = ("tiny", "small", "demo")


def estimate(cfg: MetaloopConfig, loops: int | None = None) -> dict[str, Any]:
    """Estimated seconds per kind of step and in total (``loops`` overrides the recipe's count).

    Returns:
        ``{"total_s", "steps": {kind: seconds}, "basis"}``; ``total_s`` is ``None`` for a model the costs were not
        measured on.
    """
    if not cfg.model.build_tiny or cfg.model.build_tiny not in CALIBRATED:
        return {"total_s": None, "steps": {}, "basis": "no CPU estimate for a real checkpoint; measure GPU "
                "throughput with python -m training.scripts.gpu_bench"}
    c, d = COSTS, cfg.data
    episodes = len(d.env_tasks) * d.env_seeds
    heldout_episodes = len(d.env_tasks) * d.env_heldout_seeds
    qa_tokens = cfg.difficulty.max_new_tokens
    rollouts = cfg.difficulty.rollouts
    episode_s = d.env_max_steps * (c["episode_step"] + cfg.grpo.max_completion_length * c["gen_token"])
    parts: dict[str, float] = {"prepare": c["startup"] + c["generate_sample"] * (
        d.n_train + d.n_heldout + 2 * d.n_general + (cfg.pretrain.n_samples if cfg.pretrain.steps else 0))}
    if cfg.pretrain.steps:
        parts["pretrain"] = c["sft_sample"] * cfg.pretrain.steps * cfg.pretrain.batch_size
    eval_s = c["eval_overhead"] + c["gen_token"] * cfg.eval.max_new_tokens * (d.n_heldout + d.n_general) \
        + heldout_episodes * episode_s
    difficulty_s = rollouts * (c["gen_token"] * qa_tokens * d.n_train + episodes * episode_s)
    diagnosis_s = difficulty_s * min(1.0, (cfg.difficulty.buffer_size + d.n_train / 2) / max(d.n_train, 1))
    rl_s = cfg.grpo.max_steps * cfg.grpo.prompts_per_step * cfg.grpo.num_generations * \
        cfg.grpo.max_completion_length * c["grpo_token"]
    sft_s = c["sft_sample"] * (cfg.sft.max_steps + cfg.sft.focus_steps) * cfg.sft.batch_size + \
        c["generate_sample"] * (cfg.sft.synthesize_n if cfg.sft.synthesize_assoc else 0)
    per_kind = {"eval": eval_s, "difficulty": difficulty_s, "rl": rl_s, "diagnosis": diagnosis_s, "sft": sft_s,
                "sft_random": sft_s, "sft_pool": sft_s, "sft_self": sft_s}
    steps = plan(cfg)
    n_loops = max(s.loop for s in steps) if loops is None else loops  # final_rl adds a half-loop k = K + 1
    for step in steps:
        if step.loop > n_loops or step.kind in ("prepare", "pretrain"):
            continue
        parts[step.kind] = parts.get(step.kind, 0.0) + per_kind[step.kind]
    parts = {k: round(v, 1) for k, v in parts.items()}
    return {"total_s": round(sum(parts.values()), 1), "steps": parts,
            "basis": "tiny model on 2 CPU cores (calibrated on make demo and the smoke recipe); a busy machine is "
                     "up to 2x slower"}


def minutes(seconds: float | None) -> str:
    """``"~3.5 min"`` (or ``"unknown"``)."""
    if seconds is None:
        return "unknown"
    return f"~{seconds / 60:.1f} min" if seconds >= 90 else f"~{seconds:.0f} s"
