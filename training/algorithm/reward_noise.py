"""Reward-noise injection for the robustness preset: flip a fraction of the RL task rewards.

``grpo.reward_noise = p`` wraps the task reward (and the closed-loop episode reward) so that each reward ``r`` in
[0, 1] is replaced by ``1 − r`` with probability ``p`` — a verifier that is wrong ``p`` of the time. The draws are
seeded per phase, so a rerun flips the same rewards. Only what the learner receives is corrupted: the reward
recorder inside the wrapped function still logs the true reward, so the stop rule and the reports see the truth,
and difficulty estimation, diagnosis and evaluation are never noisy.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any


class NoisyReward:
    """``fn``'s rewards, each flipped (``r -> 1 - r``) with probability ``p``.

    Args:
        fn: a TRL reward function returning floats in [0, 1] or None.
        p: flip probability.
        seed: draw seed.
    """

    def __init__(self, fn: Callable[..., list[float | None]], p: float, seed: int = 0) -> None:
        self.fn, self.p, self.rng = fn, p, random.Random(seed)
        self.__name__ = getattr(fn, "__name__", type(fn).__name__)
        self.flipped = 0

    def __getattr__(self, name: str) -> Any:  # e.g. the episode reward's ``recorder`` attribute
        if name == "fn":
            raise AttributeError(name)
        return getattr(self.fn, name)

    def __call__(self, *args: Any, **kwargs: Any) -> list[float | None]:
        out = self.fn(*args, **kwargs)
        noisy: list[float | None] = []
        for r in out:
            if r is not None and self.rng.random() < self.p:
                self.flipped += 1
                r = 1.0 - float(r)
            noisy.append(r)
        return noisy
