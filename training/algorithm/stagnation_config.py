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
        epsilon: a sample has plateaued when its SR moved less than this between windows (the floor of the band).
        plateau_z: widen that band to ``plateau_z`` standard errors of the SR difference (binomial, pooled over
            the two windows' rollouts), so that noise of a few rollouts is not read as movement; 0 = the absolute
            ``epsilon`` alone (the rule of the registered ablation).
        count_unvisited: count buffer samples the phase has not rolled out yet as moving (True: a phase that
            visits each sample once can never stop) or leave them out of TS_i (False).
        min_windows: windows to wait before the rule may fire.
    """

    threshold: float = 0.7
    window: int = 8
    epsilon: float = 0.1
    plateau_z: float = 1.0
    count_unvisited: bool = False
    min_windows: int = 2

    def __post_init__(self) -> None:
        check(0 < self.threshold <= 1, "grpo.stagnation.threshold", f"must be in (0, 1], got {self.threshold}")
        check(self.window >= 1, "grpo.stagnation.window", f"must be >= 1, got {self.window}")
        check(0 <= self.epsilon <= 1, "grpo.stagnation.epsilon", f"must be in [0, 1], got {self.epsilon}")
        check(0 <= self.plateau_z <= 5, "grpo.stagnation.plateau_z", f"must be in [0, 5], got {self.plateau_z}")
        check(self.min_windows >= 1, "grpo.stagnation.min_windows", f"must be >= 1, got {self.min_windows}")
