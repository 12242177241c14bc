"""Settings of the RL stop rule (``grpo.stagnation:`` in a recipe)."""

from __future__ import annotations

from dataclasses import dataclass

from dppo_embodied.config import check


@dataclass
class StagnationSettings:
    """The RL stop rule: stop when mean_i TS_i >= threshold ([TR] 0.7; TS_i definition [D], docs/training.md).

    Attributes:
        threshold: stop when the mean per-task saturation score reaches this.
        window: RL steps per evaluation window.
        epsilon: a sample has plateaued when its SR moved less than this between windows.
        min_windows: windows to wait before the rule may fire.
    """

    threshold: float = 0.7
    window: int = 8
    epsilon: float = 0.1
    min_windows: int = 2

    def __post_init__(self) -> None:
        check(0 < self.threshold <= 1, "grpo.stagnation.threshold", f"must be in (0, 1], got {self.threshold}")
        check(self.window >= 1, "grpo.stagnation.window", f"must be >= 1, got {self.window}")
        check(0 <= self.epsilon <= 1, "grpo.stagnation.epsilon", f"must be in [0, 1], got {self.epsilon}")
        check(self.min_windows >= 1, "grpo.stagnation.min_windows", f"must be >= 1, got {self.min_windows}")
