"""Settings of the planner loop (:class:`robot_bridge.planner.Planner`), the ``planner:`` section of a bridge
config."""

from __future__ import annotations

from dataclasses import dataclass

from dppo_embodied.errors import ConfigError
from dppo_embodied.prompts import HISTORY_STEPS

__all__ = ["PlannerConfig"]


@dataclass
class PlannerConfig:
    """Planner loop settings.

    Attributes:
        rate_hz: decisions per second at most (1–3 Hz typical).
        request_timeout_s: hard limit of one model request (no retry inside a decision; the loop retries; the robot
            holds meanwhile). 10 s covers a checkpoint's first, slow requests (warm-up) on a CPU or a busy GPU.
        max_tokens: response budget (64–256 for one action).
        temperature: sampling temperature (0–0.2).
        max_side: frames are downscaled so the longest side is at most this (pixels).
        jpeg_quality: JPEG quality of the frames.
        history: how many previous actions (with feedback) are shown to the model; the step prompt shows at most
            :data:`~dppo_embodied.prompts.HISTORY_STEPS`, as in the simulated envs (the default).
        sync: step-and-wait: execute each plan to completion before the next decision (same as
            ``requeue_fraction=0``).
        requeue_fraction: the next decision starts once at most this share of the current plan is left (LeRobot's
            chunk threshold ``g``). The default 0 finishes each primitive first, the semantics the simulated envs
            train with; 0.5 overlaps the next request with the end of the motion; 1.0 never waits (new plans
            replace running ones). The executor never waits for the model in any case: it holds.
        max_steps: decisions per episode (``None`` = until done/stopped).
    """

    rate_hz: float = 2.0
    request_timeout_s: float = 10.0
    max_tokens: int = 128
    temperature: float = 0.0
    max_side: int | None = 448
    jpeg_quality: int = 85
    history: int = HISTORY_STEPS
    sync: bool = False
    requeue_fraction: float = 0.0
    max_steps: int | None = None

    def __post_init__(self) -> None:
        if not 0 < self.rate_hz <= 30:
            raise ConfigError(f"planner.rate_hz must be in (0, 30], got {self.rate_hz}")
        if self.request_timeout_s <= 0:
            raise ConfigError(f"planner.request_timeout_s must be positive, got {self.request_timeout_s}")
        if not 0.0 <= self.requeue_fraction <= 1.0:
            raise ConfigError(f"planner.requeue_fraction must be in [0, 1], got {self.requeue_fraction}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"max_steps must be >= 1, got {self.max_steps}")
        if self.history < 0:
            raise ConfigError(f"planner.history must be >= 0, got {self.history}")
