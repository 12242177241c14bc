"""One closed-loop episode with any text policy: ``run_episode(env, act, seed) -> EpisodeResult``.

Used by the benchmarks' closed-loop suites and by multi-turn GRPO rollouts. ``act`` maps an observation dict to the
model's raw text; nothing it returns can crash the env (invalid text is fed back as feedback).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from dppo_embodied.errors import EnvError


@dataclass
class EpisodeResult:
    """Outcome of one episode.

    Attributes:
        success: ``info["is_success"]`` at the end.
        progress: task progress at the end, 0..1.
        steps: decisions taken.
        invalid: invalid actions (unparsable or refused).
        total_reward: sum of rewards.
        transcript: one dict per step: ``step``, ``instruction``, ``feedback_before``, ``action`` (raw text),
            ``command`` (canonical JSON or None), ``parse_ok``, ``parse_error``, ``feedback``, ``reward``,
            ``progress``, ``is_success``, ``latency_s`` (time spent in ``act``).
        seed: the reset seed.
        terminated: the episode ended by success, ``done`` or too many invalid actions (else truncated/cut).
    """

    success: bool
    progress: float
    steps: int
    invalid: int
    total_reward: float
    transcript: list[dict[str, Any]] = field(default_factory=list)
    seed: int | None = None
    terminated: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def run_episode(env: Any, act: Callable[[dict[str, Any]], str], seed: int, max_steps: int | None = None
                ) -> EpisodeResult:
    """Reset ``env`` with ``seed`` and step it with ``act`` until it terminates, truncates or ``max_steps``.

    Args:
        env: a Gymnasium env with text actions (e.g. ``envs.make("dppo/TabletopPick-v0")``).
        act: observation -> action text.
        seed: reset seed (same seed and same actions -> same episode).
        max_steps: optional cap below the env's own horizon.

    Returns:
        The :class:`EpisodeResult`.
    """
    if max_steps is not None and max_steps < 1:
        raise EnvError(f"max_steps must be >= 1 or None, got {max_steps!r}")
    obs, info = env.reset(seed=seed)
    transcript: list[dict[str, Any]] = []
    total, steps, terminated = 0.0, 0, False
    while max_steps is None or steps < max_steps:
        t0 = time.perf_counter()
        text = act(obs)
        latency = time.perf_counter() - t0
        before = obs.get("feedback", "")
        obs, reward, terminated, truncated, info = env.step(text)
        steps += 1
        total += float(reward)
        transcript.append({
            "step": steps, "instruction": obs.get("instruction", ""), "feedback_before": before,
            "action": text if isinstance(text, str) else repr(text), "command": info.get("command"),
            "parse_ok": info.get("parse_ok"), "parse_error": info.get("parse_error"),
            "feedback": obs.get("feedback", ""), "reward": float(reward), "progress": info.get("progress"),
            "is_success": info.get("is_success"), "latency_s": round(latency, 6),
        })
        if terminated or truncated:
            break
    return EpisodeResult(success=bool(info.get("is_success", False)), progress=float(info.get("progress", 0.0)),
                         steps=steps, invalid=int(info.get("invalid_count", 0)), total_reward=total,
                         transcript=transcript, seed=seed, terminated=bool(terminated))
