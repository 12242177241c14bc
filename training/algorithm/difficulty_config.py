"""Settings of the difficulty estimation and the RL buffer (``difficulty:`` in a recipe)."""

from __future__ import annotations

from dataclasses import dataclass

from dppo_embodied.config import check


@dataclass
class DifficultySettings:
    """Difficulty estimation and the RL buffer ([P] SR = mean success over T rollouts; thresholds [D]).

    Attributes:
        rollouts: T, sampled rollouts per candidate.
        temperature: sampling temperature of the estimation rollouts (0 = greedy: every rollout of a candidate is
            the same, SR is 0 or 1; for comparing rollout engines, not for training).
        max_new_tokens: generation cap for estimation, diagnosis and evaluation.
        trivial_sr: SR >= this is trivial and dropped from RL.
        intractable_sr: SR <= this is intractable for RL and routed to the weakness pool.
        max_task_share: cap on any one task's share of the RL buffer.
        max_capability_share: cap on any one capability's share of the RL buffer.
        max_answer_type_share: cap on any one answer type's share of the RL buffer (``yes_no``, ``mcq``, ...;
            closed-loop samples are one type, ``episode``); 1 = no cap. GRPO on a buffer of mostly yes/no prompts
            raises "yes"/"no" for every question type of a small model (lab notebook 15).
        balance_yes_no: each yes/no template enters the RL buffer with as many gold-"yes" as gold-"no" candidates
            (the larger side cut to the smaller's count, most informative first): GRPO on prompts that lean to one
            answer moves a small policy's answer prior toward it (lab notebook 15).
        buffer_size: maximum RL buffer size.
        failure_sr: diagnosis: a sample whose post-RL SR is below this is a failure (D_weak); a value just above 0
            keeps only never-solved samples (the ReLIFT-style variant).
    """

    rollouts: int = 4
    temperature: float = 1.0
    max_new_tokens: int = 24
    trivial_sr: float = 1.0
    intractable_sr: float = 0.0
    max_task_share: float = 0.35
    max_capability_share: float = 0.35
    max_answer_type_share: float = 1.0
    balance_yes_no: bool = False
    buffer_size: int = 256
    failure_sr: float = 0.5

    def __post_init__(self) -> None:
        check(0 < self.failure_sr <= 1, "difficulty.failure_sr", f"must be in (0, 1], got {self.failure_sr}")
        check(self.rollouts >= 1, "difficulty.rollouts", f"must be >= 1, got {self.rollouts}")
        check(self.temperature >= 0, "difficulty.temperature",
              f"must be > 0 for sampled rollouts (0 = greedy), got {self.temperature}")
        check(0 <= self.intractable_sr < self.trivial_sr <= 1, "difficulty.intractable_sr",
              f"need 0 <= intractable_sr < trivial_sr <= 1, got {self.intractable_sr} and {self.trivial_sr}")
        for key in ("max_task_share", "max_capability_share", "max_answer_type_share"):
            v = getattr(self, key)
            check(0 < v <= 1, f"difficulty.{key}", f"must be in (0, 1], got {v}")
        check(self.buffer_size >= 1, "difficulty.buffer_size", f"must be >= 1, got {self.buffer_size}")
