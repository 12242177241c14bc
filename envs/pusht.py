"""``dppo/PushT-v0``: LeRobot's gym-pusht behind the same text-action interface as the tabletop envs.

A point action ``(x, y)`` (normalized, origin top-left) maps linearly to gym-pusht's 512 x 512 workspace:
``action = 512 * (x, y)`` (the agent is driven toward that absolute target); ``then`` is ignored (every point is a
``move_to``/``push`` of the round agent). A ``move`` shifts the current target by ``dx_cm``/``dy_cm`` with
1 cm = :data:`UNITS_PER_CM` workspace units (+dy = up in the image, i.e. away from the viewer, as in the tabletop
convention). Each decision repeats the target for ``action_repeat`` simulator steps. Skills are invalid here.

Observation: ``{"image": (H, W, 3) uint8, "instruction": str, "feedback": str, "history": tuple[str, ...],
"skills": ()}`` (+ ``"state"``: agent x, y with ``include_state=True``), the same text fields as the tabletop envs
(:mod:`envs.text_action`; no skills here); there is no depth in this flat world. Success is gym-pusht's own
(coverage > 0.95).
Needs the optional ``gym-pusht`` package (``pip install 'dppo-embodied[lerobot]'``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from dppo_embodied.actions import DoneAction, MoveAction, PointAction, action_to_json, parse_action
from dppo_embodied.episode import history_entry
from dppo_embodied.errors import ConfigError
from dppo_embodied.imports import require
from dppo_embodied.parsing import NoAnswer
from envs.text_action import CHARSET, begin_step, text_observation, text_spaces

WORKSPACE = 512.0
UNITS_PER_CM = 8.0
INSTRUCTION = "Push the grey T-shaped block onto the green T-shaped target with the blue round pusher."


class PushTTextEnv(gym.Env[dict[str, Any], str]):
    """gym-pusht driven by text actions.

    Args:
        image_size: observation size in pixels (gym-pusht renders it directly).
        horizon: decisions per episode.
        action_repeat: simulator steps per decision (gym-pusht runs at 10 Hz).
        max_invalid: invalid actions before the episode terminates.
        include_state: add ``"state"`` (agent position, workspace units).
        success_bonus: reward added on success.
        render_mode: ``None`` or ``"rgb_array"``.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, image_size: int = 96, horizon: int = 50, action_repeat: int = 6, max_invalid: int = 10,
                 include_state: bool = False, success_bonus: float = 1.0, render_mode: str | None = None) -> None:
        require("gym_pusht", extra="lerobot", package="gym-pusht")
        if not isinstance(image_size, int) or not 32 <= image_size <= 1024:
            raise ConfigError(f"image_size must be an integer in 32..1024, got {image_size!r}")
        for name, v in (("horizon", horizon), ("action_repeat", action_repeat), ("max_invalid", max_invalid)):
            if not isinstance(v, int) or v < 1:
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        if render_mode not in (None, "rgb_array"):
            raise ConfigError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        from gym_pusht.envs.pusht import PushTEnv

        self._env = PushTEnv(obs_type="pixels_agent_pos", render_mode="rgb_array", observation_width=image_size,
                             observation_height=image_size)
        self.image_size, self.horizon, self.action_repeat = image_size, horizon, action_repeat
        self.max_invalid, self.include_state, self.success_bonus = max_invalid, include_state, float(success_bonus)
        self.render_mode = render_mode
        obs: dict[str, spaces.Space[Any]] = {"image": spaces.Box(0, 255, (image_size, image_size, 3), np.uint8),
                                             **text_spaces()}
        if include_state:
            obs["state"] = spaces.Box(0.0, WORKSPACE, (2,), np.float32)
        self.observation_space = spaces.Dict(obs)
        self.action_space = spaces.Text(max_length=4096, min_length=0, charset=CHARSET)
        self._target = np.array([WORKSPACE / 2, WORKSPACE / 2], dtype=np.float32)
        self._inner_obs: dict[str, Any] = {}
        self._reset_done, self._over = False, False
        self.feedback, self.steps, self.invalid_count, self.progress = "", 0, 0, 0.0
        self.history: list[str] = []
        self._success = False

    def _obs(self) -> dict[str, Any]:
        o: dict[str, Any] = {"image": np.array(self._inner_obs["pixels"], dtype=np.uint8, copy=True),
                             **text_observation(INSTRUCTION, self.feedback, self.history, ())}
        if self.include_state:
            o["state"] = np.array(self._inner_obs["agent_pos"], dtype=np.float32, copy=True)
        return o

    def _info(self, **extra: Any) -> dict[str, Any]:
        info = {"is_success": self._success, "progress": self.progress, "invalid_count": self.invalid_count,
                "steps": self.steps, "task": "pusht", "feedback": self.feedback}
        info.update(extra)
        return info

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Reset gym-pusht (same seed -> same start)."""
        super().reset(seed=seed)
        self._inner_obs, _ = self._env.reset(seed=int(self.np_random.integers(2**31 - 1)))
        self._target = np.asarray(self._inner_obs["agent_pos"], dtype=np.float32).copy()
        self.feedback, self.steps, self.invalid_count, self.progress, self.history = "", 0, 0, 0.0, []
        self._success, self._reset_done, self._over = False, True, False
        return self._obs(), self._info(parse_ok=True, parse_error=None, command=None, executed=False)

    def step(self, action: Any) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        """Parse one text action and drive the pusher (any text is accepted)."""
        text = begin_step(action, self._reset_done, self._over)
        self.steps += 1
        parsed = parse_action(text, image_size=(self.image_size, self.image_size))
        parse_ok, parse_error, command, executed, done = False, None, None, False, False
        if isinstance(parsed, NoAnswer):
            parse_error, reason = parsed.reason, parsed.reason
        else:
            parse_ok, command, reason = True, action_to_json(parsed), ""
            if isinstance(parsed, PointAction):
                self._target = np.array([parsed.x, parsed.y], dtype=np.float32) * WORKSPACE
            elif isinstance(parsed, MoveAction):
                cm = np.clip(np.array([parsed.dx_cm, -parsed.dy_cm]), -100.0, 100.0)
                delta = cm * UNITS_PER_CM
                self._target = np.clip(self._target + delta, 0.0, WORKSPACE).astype(np.float32)
            elif isinstance(parsed, DoneAction):
                done = True
            else:
                reason = "skills are not available in PushT; use point or move actions"
        reward = 0.0
        if reason:
            self.invalid_count += 1
            self.feedback = f"Last action is invalid: {reason}"
        elif not done:
            executed = True
            for _ in range(self.action_repeat):
                self._inner_obs, _, term, _, inner_info = self._env.step(self._target)
                self._success = bool(inner_info["is_success"])
                cov = float(inner_info["coverage"])
                if term:
                    break
            progress = float(np.clip(cov / self._env.success_threshold, 0.0, 1.0))
            reward = progress - self.progress + (self.success_bonus if self._success else 0.0)
            self.progress = progress
            x, y = self._target / WORKSPACE
            self.feedback = f"Last action succeeded: pusher moved toward ({x:.2f}, {y:.2f}); coverage {cov:.0%}"
        else:
            self.feedback = "declared the task done"
        self.history.append(history_entry(command, text, self.feedback))
        terminated = bool(self._success or done or self.invalid_count >= self.max_invalid)
        truncated = bool(not terminated and self.steps >= self.horizon)
        self._over = terminated or truncated
        info = self._info(parse_ok=parse_ok, parse_error=parse_error, command=command, executed=executed)
        return self._obs(), float(reward), terminated, truncated, info

    def render(self) -> np.ndarray | None:  # type: ignore[override]
        """The current observation image (``render_mode="rgb_array"``)."""
        if self.render_mode != "rgb_array" or not self._inner_obs:
            return None
        return np.asarray(self._inner_obs["pixels"], dtype=np.uint8)

    def close(self) -> None:
        """Close gym-pusht."""
        self._env.close()
