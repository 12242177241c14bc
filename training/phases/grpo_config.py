"""Settings of the RL phase (``grpo:`` in a recipe); extra ``trl.GRPOConfig`` fields go under ``grpo.trainer``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dppo_embodied.config import check
from training.algorithm.stagnation_config import StagnationSettings
from training.phases.dynamic_sampling_config import DynamicSamplingSettings


@dataclass
class GRPOSettings:
    """The RL phase (TRL GRPOTrainer).

    Attributes:
        max_steps: step budget per RL phase.
        learning_rate: constant learning rate (training-stack.md: <= 2e-4 for a tiny VLM).
        num_generations: G, completions per prompt.
        prompts_per_step: prompts per optimizer step (per device).
        max_completion_length: completion token cap.
        temperature: rollout sampling temperature.
        beta: KL coefficient (0 disables the reference model); the reference is the policy at the phase's start.
        lambda_format: λ_f, weight of the format reward.
        lambda_task: λ_t, weight of the task reward.
        stagnation: the stop rule.
        dynamic_sampling: DAPO-style dynamic sampling (off by default).
        reward_noise: fraction of RL task rewards flipped (robustness preset; :mod:`training.algorithm.reward_noise`).
        trainer: extra ``trl.GRPOConfig`` fields (checked by name).
    """

    max_steps: int = 40
    learning_rate: float = 1e-4
    num_generations: int = 8
    prompts_per_step: int = 8
    max_completion_length: int = 16
    temperature: float = 1.0
    beta: float = 0.0
    lambda_format: float = 0.1
    lambda_task: float = 1.0
    stagnation: StagnationSettings = field(default_factory=StagnationSettings)
    dynamic_sampling: DynamicSamplingSettings = field(default_factory=DynamicSamplingSettings)
    reward_noise: float = 0.0
    trainer: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check(self.max_steps >= 0, "grpo.max_steps", f"must be >= 0, got {self.max_steps}")
        check(0 < self.learning_rate <= 1e-2, "grpo.learning_rate", f"must be in (0, 1e-2], got {self.learning_rate}")
        check(self.num_generations >= 2, "grpo.num_generations",
              f"must be >= 2 (GRPO normalises rewards within a group), got {self.num_generations}")
        check(self.prompts_per_step >= 1, "grpo.prompts_per_step", f"must be >= 1, got {self.prompts_per_step}")
        check(self.max_completion_length >= 1, "grpo.max_completion_length",
              f"must be >= 1, got {self.max_completion_length}")
        check(self.temperature > 0, "grpo.temperature", f"must be > 0, got {self.temperature}")
        check(self.beta >= 0, "grpo.beta", f"must be >= 0, got {self.beta}")
        check(0 <= self.reward_noise <= 1, "grpo.reward_noise", f"must be in [0, 1], got {self.reward_noise}")
        check(self.lambda_format >= 0 and self.lambda_task > 0, "grpo.lambda_task",
              f"need lambda_format >= 0 and lambda_task > 0, got {self.lambda_format}, {self.lambda_task}")
