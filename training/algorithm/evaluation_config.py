"""Settings of the held-out evaluation (``eval:`` in a recipe)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class EvalSettings:
    """Held-out evaluation after every phase (greedy, scored by dppo_embodied.metrics.score_sample).

    Attributes:
        max_new_tokens: generation cap.
        batch_size: requests per generation batch.
        every_phase: evaluate after each RL and SFT phase (else only after each loop).
        sampled_k: also report held-out *sampled* success: pass@1 averaged over this many answers per question at
            ``sampled_temperature`` (the quantity GRPO optimises; docs/ablation.md's primary metric); 0 = greedy only.
            On the local engine its draws are seeded (run seed + ``SAMPLED_EVAL_SEED_OFFSET``) and forked from the
            run's generator: every evaluation of one run uses the same random numbers (a phase's before/after
            difference is not sampling noise).
        sampled_temperature: sampling temperature of that estimate.
    """

    max_new_tokens: int = 24
    batch_size: int = 64
    every_phase: bool = True
    sampled_k: int = 0
    sampled_temperature: float = 1.0
