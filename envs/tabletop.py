"""Closed-loop tabletop envs whose action is the model's raw text (``dppo/Tabletop*-v0``).

Each step: the text is parsed by :func:`dppo_embodied.actions.parse_action`; an unparsable or invalid action
runs no physics, gets the feedback ``"Last action is invalid: <reason>"`` and counts toward ``max_invalid``
(default 10, then the episode terminates); a valid one is executed by :class:`envs.executor.Executor`. The episode
terminates on success, on a ``done`` action or at ``max_invalid``, and is truncated after ``horizon`` decisions.

Observation: ``{"image": (H, W, 3) uint8, "depth": (H, W) float32 metres, "instruction": str, "feedback": str,
"history": tuple[str, ...], "skills": tuple[str, ...]}`` plus ``"state"`` (float32 vector, see
:meth:`TabletopEnv.state_vector`) with ``include_state=True``. ``history`` holds the last
:data:`~dppo_embodied.prompts.HISTORY_STEPS` lines ``"{command} -> {feedback}"`` (the raw reply, on one line,
when it did not parse; :func:`dppo_embodied.episode.history_entry`); ``skills`` the skill names this env accepts.
Everything the policy sees is in the observation (:meth:`dppo_embodied.episode.StepObservation.from_env`).
Reward: the change in task progress (dense, potential-based) plus ``success_bonus`` on the step that succeeds.
``info``: ``is_success``, ``progress``, ``parse_ok``, ``parse_error``, ``command``, ``invalid_count``, ``executed``,
``feedback``, ``task``, ``steps``.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from dppo_embodied.actions import action_to_json, parse_action
from dppo_embodied.episode import history_entry, invalid_feedback
from dppo_embodied.errors import ConfigError, EnvError
from dppo_embodied.parsing import NoAnswer
from dppo_embodied.prompts import DEFAULT_SKILLS
from envs.control import Controller
from envs.executor import Executor, Result
from envs.scene import CAMERAS, TARGET_RADIUS, TabletopScene
from envs.spec import MAX_OBJECTS, SceneSpec, free_position, sample_scene
from envs.tasks import Task, evaluate
from envs.text_action import CHARSET, begin_step, text_observation, text_spaces

logger = logging.getLogger(__name__)

STATE_SIZE = 3 + 2 + 3 * MAX_OBJECTS + 2
#: depth beyond this (the far clipping plane, metres) is reported as this value
MAX_DEPTH = 50.0


class TabletopEnv(gym.Env[dict[str, Any], str]):
    """Base class of the text-action tabletop tasks; subclasses set :attr:`kind` and :meth:`make_task`.

    Args:
        image_size: square observation size in pixels (32..1024).
        camera: ``"front"``, ``"top"`` or ``"close"`` (:data:`envs.scene.CAMERAS`).
        horizon: decisions per episode (default per task: 15-50).
        max_invalid: invalid actions before the episode terminates.
        n_objects: objects per scene (int or inclusive ``[low, high]``; at least what the task needs).
        distractors: objects sharing the colour or shape of another one.
        include_state: add the ``"state"`` vector to observations.
        success_bonus: reward added on success.
        skills: allowed skill names.
        render_mode: ``None`` or ``"rgb_array"``.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 2}
    kind: ClassVar[str] = "pick"
    default_horizon: ClassVar[int] = 15
    min_objects: ClassVar[int] = 1

    def __init__(self, image_size: int = 96, camera: str = "front", horizon: int | None = None, max_invalid: int = 10,
                 n_objects: int | tuple[int, int] | list[int] = (2, 5), distractors: int = 0,
                 include_state: bool = False, success_bonus: float = 1.0, skills: tuple[str, ...] = DEFAULT_SKILLS,
                 render_mode: str | None = None) -> None:
        if not isinstance(image_size, int) or not 32 <= image_size <= 1024:
            raise ConfigError(f"image_size must be an integer in 32..1024, got {image_size!r}")
        if camera not in CAMERAS:
            raise ConfigError(f"unknown camera {camera!r}; valid: {', '.join(CAMERAS)}")
        horizon = self.default_horizon if horizon is None else horizon
        if not isinstance(horizon, int) or not 1 <= horizon <= 1000:
            raise ConfigError(f"horizon must be an integer in 1..1000, got {horizon!r}")
        if not isinstance(max_invalid, int) or max_invalid < 1:
            raise ConfigError(f"max_invalid must be a positive integer, got {max_invalid!r}")
        lo, hi = (n_objects, n_objects) if isinstance(n_objects, int) else tuple(n_objects)
        if not (isinstance(lo, int) and isinstance(hi, int) and self.min_objects <= lo <= hi <= MAX_OBJECTS):
            raise ConfigError(f"n_objects must be an int or [low, high] within {self.min_objects}..{MAX_OBJECTS} "
                              f"for {type(self).__name__}, got {n_objects!r}")
        if render_mode not in (None, "rgb_array"):
            raise ConfigError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        unknown = [s for s in skills if s not in DEFAULT_SKILLS]
        if unknown:
            raise ConfigError(f"unknown skill(s) {unknown}; valid: {', '.join(DEFAULT_SKILLS)}")
        self.image_size, self.camera, self.horizon, self.max_invalid = image_size, camera, horizon, max_invalid
        self.n_objects = (lo, hi)
        self.distractors = int(distractors)
        self.include_state, self.success_bonus, self.skills = include_state, float(success_bonus), tuple(skills)
        self.render_mode = render_mode
        obs: dict[str, spaces.Space[Any]] = {
            "image": spaces.Box(0, 255, (image_size, image_size, 3), np.uint8),
            "depth": spaces.Box(0.0, MAX_DEPTH, (image_size, image_size), np.float32),
            **text_spaces(),
        }
        if include_state:
            obs["state"] = spaces.Box(-10.0, 10.0, (STATE_SIZE,), np.float32)
        self.observation_space = spaces.Dict(obs)
        self.action_space = spaces.Text(max_length=4096, min_length=0, charset=CHARSET)
        self._scene: TabletopScene | None = None
        self.task: Task | None = None
        self._reset_done = False
        self._over = False
        self.feedback = ""
        self.steps = 0
        self.invalid_count = 0
        self.progress = 0.0
        self.scene_seed: int | None = None
        self.history: list[str] = []
        self._last_obs: dict[str, Any] | None = None

    # ------------------------------------------------------------------------------------------------ helpers
    @property
    def scene(self) -> TabletopScene:
        """The MuJoCo scene (created on first reset)."""
        if self._scene is None:
            self._scene = TabletopScene(self.image_size)
        return self._scene

    @property
    def instruction(self) -> str:
        """The current task's instruction."""
        return self.task.instruction if self.task else ""

    def make_task(self, rng: np.random.Generator) -> tuple[SceneSpec, Task]:
        """Draw a scene and a task for it (subclasses)."""
        raise NotImplementedError

    def _visible(self, names: list[str]) -> bool:
        """Every object well inside the image and the task objects' pixels visible."""
        sc = self.scene
        for k in range(sc.n_objects):
            x, y = sc.project(sc.object_pos(k), self.camera)
            if not (0.05 <= x <= 0.95 and 0.05 <= y <= 0.95):
                return False
        seg = sc.render_segmentation(self.camera)
        spec = sc.spec
        assert spec is not None
        return all((seg == spec.index(n)).sum() >= 4 for n in names)

    def state_vector(self) -> np.ndarray:
        """``[tcp xyz, gripper closed, holding, object xyz x 8 (zeros when absent), target xy]`` float32."""
        sc = self.scene
        v = np.zeros(STATE_SIZE, dtype=np.float32)
        v[:3] = sc.gripper_pos
        v[3] = float(sc.gripper_closed)
        v[4] = float(sc.held is not None)
        pos = sc.object_positions()
        v[5: 5 + pos.size] = pos.reshape(-1)
        if sc.target is not None:
            v[-2:] = sc.target
        return v

    def _obs(self) -> dict[str, Any]:
        sc = self.scene
        obs: dict[str, Any] = {"image": sc.render(self.camera),
                               "depth": np.minimum(sc.render_depth(self.camera), MAX_DEPTH),
                               **text_observation(self.instruction, self.feedback, self.history, self.skills)}
        if self.include_state:
            obs["state"] = self.state_vector()
        self._last_obs = obs
        return obs

    def _info(self, **extra: Any) -> dict[str, Any]:
        success, progress = evaluate(self.task, self.scene) if self.task else (False, 0.0)
        info = {"is_success": bool(success), "progress": float(progress), "invalid_count": self.invalid_count,
                "steps": self.steps, "task": self.task.to_text() if self.task else "",
                "scene_seed": self.scene_seed, "feedback": self.feedback}
        info.update(extra)
        return info

    # ------------------------------------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Draw a new scene and task (same seed -> same scene, task and frames)."""
        super().reset(seed=seed)
        for _ in range(50):
            s = int(self.np_random.integers(2**31 - 1))
            spec, task = self.make_task(np.random.default_rng(s))
            self.scene.load(spec)
            self.scene.set_target(task.target)
            self.scene.forward()
            if self._visible(task.objects):
                break
        else:  # pragma: no cover - 50 unlucky draws
            raise EnvError("could not draw a scene with the task objects visible; use fewer objects")
        self.scene_seed, self.task = s, task
        self.ctl = Controller(self.scene)
        self.executor = Executor(self.scene, self.ctl, self.camera, self.skills)
        self.feedback, self.steps, self.invalid_count, self.history = "", 0, 0, []
        self._reset_done, self._over = True, False
        self.progress = evaluate(task, self.scene)[1]
        return self._obs(), self._info(parse_ok=True, parse_error=None, command=None, executed=False)

    def step(self, action: Any) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        """Parse and execute one text action (any input is accepted; nothing the model writes raises)."""
        text = begin_step(action, self._reset_done, self._over)
        self.steps += 1
        parsed = parse_action(text, image_size=(self.image_size, self.image_size), skills=self.skills)
        parse_ok, parse_error, command, executed, done = False, None, None, False, False
        if isinstance(parsed, NoAnswer):
            parse_error = parsed.reason
            self.invalid_count += 1
            self.feedback = invalid_feedback(parsed.reason)
        else:
            parse_ok = True
            command = action_to_json(parsed)
            try:
                res = self.executor.execute(parsed)
            except (EnvError, ConfigError) as e:  # a primitive refused (e.g. an unreachable target)
                res = Result(False, str(e))
            if res.valid:
                executed, done = True, res.done
                self.feedback = ("Last action succeeded: " if res.ok else "Last action failed: ") + res.message
            else:
                self.invalid_count += 1
                self.feedback = invalid_feedback(res.message)
        self.history.append(history_entry(command, text, self.feedback))
        success, progress = evaluate(self.task, self.scene)  # type: ignore[arg-type]
        reward = progress - self.progress + (self.success_bonus if success else 0.0)
        self.progress = progress
        terminated = bool(success or done or self.invalid_count >= self.max_invalid)
        truncated = bool(not terminated and self.steps >= self.horizon)
        if self.invalid_count >= self.max_invalid and not success:
            self.feedback += f" Episode ended after {self.invalid_count} invalid actions."
        self._over = terminated or truncated
        obs = self._obs()
        info = self._info(parse_ok=parse_ok, parse_error=parse_error, command=command, executed=executed)
        return obs, float(reward), terminated, truncated, info

    def render(self) -> np.ndarray | None:  # type: ignore[override]
        """The current camera image (``render_mode="rgb_array"``)."""
        if self.render_mode != "rgb_array":
            return None
        return self.scene.render(self.camera)

    def close(self) -> None:
        """Free the renderer."""
        if self._scene is not None:
            self._scene.close()
            self._scene = None


def _free_target(rng: np.random.Generator, spec: SceneSpec, i: int, min_d: float, max_d: float
                 ) -> tuple[float, float] | None:
    o = spec.objects[i]
    placed = [(x.x, x.y, x.radius) for k, x in enumerate(spec.objects) if k != i]
    for _ in range(50):
        t = free_position(rng, max(TARGET_RADIUS, o.radius), placed, tries=20)
        if t is not None and min_d <= float(np.hypot(t[0] - o.x, t[1] - o.y)) <= max_d:
            return t
    return None


class TabletopPickEnv(TabletopEnv):
    """Pick up the named object (success: held and lifted 5 cm). Horizon 15."""

    kind = "pick"
    default_horizon = 15

    def make_task(self, rng: np.random.Generator) -> tuple[SceneSpec, Task]:
        spec = sample_scene(rng, self.n_objects, distractors=self.distractors)
        i = int(rng.integers(len(spec.objects)))
        return spec, Task("pick", [spec.objects[i].slug])


def _target_task(env: TabletopEnv, rng: np.random.Generator, min_m: float, max_m: float) -> tuple[SceneSpec, Task]:
    """A scene and an ``env.kind`` task of moving one object onto a target disc ``min_m``..``max_m`` metres from it
    (scenes are drawn again until one has room for the disc)."""
    while True:
        spec = sample_scene(rng, env.n_objects, distractors=env.distractors)
        i = int(rng.integers(len(spec.objects)))
        t = _free_target(rng, spec, i, min_m, max_m)
        if t is not None:
            return spec, Task(env.kind, [spec.objects[i].slug], t)


class TabletopPushEnv(TabletopEnv):
    """Push an object onto the white target disc (centre within 3 cm). Horizon 20."""

    kind = "push"
    default_horizon = 20

    def make_task(self, rng: np.random.Generator) -> tuple[SceneSpec, Task]:
        return _target_task(self, rng, 0.08, 0.2)


class TabletopPlaceEnv(TabletopEnv):
    """Pick an object and place it on the white target disc (centre within 3 cm, released, upright). Horizon 20."""

    kind = "place"
    default_horizon = 20

    def make_task(self, rng: np.random.Generator) -> tuple[SceneSpec, Task]:
        return _target_task(self, rng, 0.1, 0.35)


class TabletopStackEnv(TabletopEnv):
    """Stack one object on a flat-topped one (block or cylinder). Horizon 30."""

    kind = "stack"
    default_horizon = 30
    min_objects = 2
    levels: ClassVar[int] = 2

    def __init__(self, n_objects: int | tuple[int, int] | list[int] | None = None, **kwargs: Any) -> None:
        if n_objects is None:
            n_objects = (self.levels, max(self.levels, 5))
        super().__init__(n_objects=n_objects, **kwargs)

    def make_task(self, rng: np.random.Generator) -> tuple[SceneSpec, Task]:
        while True:
            spec = sample_scene(rng, (max(self.n_objects[0], self.levels), self.n_objects[1]),
                                distractors=self.distractors)
            flat = [k for k, o in enumerate(spec.objects) if o.shape != "ball"]
            if len(flat) < self.levels - 1 or len(spec.objects) < self.levels:
                continue
            base = [int(k) for k in rng.choice(flat, size=self.levels - 1, replace=False)]
            rest = [k for k in range(len(spec.objects)) if k not in base]
            top = int(rest[int(rng.integers(len(rest)))])
            return spec, Task("stack", [spec.objects[k].slug for k in [*base, top]])


class TabletopStack3Env(TabletopStackEnv):
    """Build a three-object tower (two flat-topped objects below). Horizon 50."""

    default_horizon = 50
    min_objects = 3
    levels = 3
