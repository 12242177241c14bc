"""Settings of DAPO-style dynamic sampling in the RL phase (``grpo.dynamic_sampling:`` in a recipe)."""

from __future__ import annotations

from dataclasses import dataclass

from dppo_embodied.config import check


@dataclass
class DynamicSamplingSettings:
    """DAPO-style dynamic sampling in the RL phase (:mod:`training.phases.dynamic_sampling`).

    Attributes:
        enabled: drop prompts whose GRPO group had zero reward variance and refill their slots from the candidates
            left out of the buffer (most informative first).
        probe_rollouts: cheap sampled rollouts per prompt before it enters a batch; prompts whose outcomes all agree
            are dropped before they cost a group (0 = no pre-filter).
        max_tries: prompts probed per batch slot before one is taken unprobed.
    """

    enabled: bool = False
    probe_rollouts: int = 0
    max_tries: int = 4

    def __post_init__(self) -> None:
        check(self.probe_rollouts >= 0, "grpo.dynamic_sampling.probe_rollouts",
              f"must be >= 0, got {self.probe_rollouts}")
        check(self.max_tries >= 1, "grpo.dynamic_sampling.max_tries", f"must be >= 1, got {self.max_tries}")

