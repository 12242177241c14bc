"""The sampled held-out evaluation draws common random numbers: one model, one number; the run's RNG untouched."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

torch = pytest.importorskip("torch")


def _coin_roller(samples: Sequence[Any], n: int, temperature: float) -> list[list[tuple[float, bool]]]:
    """A stand-in policy that answers right with probability 1/2, drawing from torch's global generator (as the
    local engine's sampling does)."""
    return [[(1.0, True) if torch.rand(()) < 0.5 else (0.0, False) for _ in range(n)] for _ in samples]


def test_seeded_sampled_eval_repeats_and_leaves_the_training_rng_alone(samples: list) -> None:
    from training.algorithm.evaluation import sampled_eval

    torch.manual_seed(123)
    first = sampled_eval(_coin_roller, samples, 4, 1.0, "a", seed=5)
    after_first = torch.rand(3)
    torch.manual_seed(123)
    expected_after = torch.rand(3)
    assert torch.equal(after_first, expected_after), "the evaluation consumed the run's random numbers"
    torch.manual_seed(999)  # another point of the run: the same model still gets the same number
    assert sampled_eval(_coin_roller, samples, 4, 1.0, "b", seed=5) == first
    unseeded = {sampled_eval(_coin_roller, samples, 4, 1.0, "c")["overall"] for _ in range(5)}
    assert len(unseeded) > 1, "without a seed the draws differ (the stand-in must be able to tell)"
