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
    """

    max_new_tokens: int = 24
    batch_size: int = 64
    every_phase: bool = True
