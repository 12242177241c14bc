"""The scripted expert as a policy over step conversations: what ``dppo serve --backend expert`` answers with.

:class:`ExpertPolicy` is a :data:`dppo_embodied.episode.Policy` (conversations in, JSON actions out) that keeps a
twin of the episode it is asked about, so that ``dppo bridge --robot sim --server <expert>`` completes its task
over the OpenAI protocol and anyone can rehearse the whole robot path without a trained model:

* **which scene**: on the first step of an episode (no history in the step text) the request image is compared
  with the first frame of the twin scenes ``seed, seed + 1, ...`` (the bridge's episode ``k`` uses its ``--seed``
  ``+ k``); the closest one is the episode's scene (a ``--seed`` the bridge also uses makes this instant);
* **which task**: the step text's ``Task:`` line read back with :func:`envs.tasks.parse_task`; for push and place
  the white target disc is found in the image (the pixels that differ from the scene without a disc, back-projected
  onto the table with the scene's camera calibration);
* **what state**: each answer is executed on the twin (:class:`envs.executor.Executor`, the envs' own executor)
  once the next request's history shows the robot ran it (succeeded, or stopped before it finished: the twin
  assumes the primitive completed); an answer the robot refused as invalid is not;
* **what to do**: :func:`envs.experts.plan_action` on the twin, as for the envs' oracle demonstrations.

One episode at a time (one bridge per expert server). Rendering happens in the thread that calls the policy
(``dppo serve`` calls it from its one batcher thread). It is the ``expert`` plugin of the ``dppo_embodied.policies``
entry-point group (pyproject.toml), which ``dppo serve --backend expert`` loads without naming this module.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dppo_embodied.actions import DoneAction, action_to_json, parse_action
from dppo_embodied.conversation import Conversation
from dppo_embodied.errors import ConfigError, EnvError
from dppo_embodied.parsing import NoAnswer
from dppo_embodied.prompts import DEFAULT_SKILLS

logger = logging.getLogger(__name__)

#: a 64 x 64 colour thumbnail closer than this (mean squared difference, 0..1 scale) is the same first frame (JPEG
#: and a target disc stay below 1e-3; other seeds' scenes measure 3e-3 and more)
SAME_FRAME_MSE = 1.5e-3
#: pixels this much brighter than the scene without a disc (and near white) belong to the target disc
DISC_DIFF = 60


@dataclass(frozen=True)
class StepText:
    """The fields of a step text (:func:`dppo_embodied.prompts.build_step_prompt`) read back."""

    instruction: str
    history: tuple[str, ...]
    feedback: str


def read_step_text(text: str) -> StepText:
    """Read the instruction, history lines and feedback out of a step prompt.

    Raises:
        ConfigError: the text has no ``Task:`` line (it is not a closed-loop step prompt).
    """
    m = re.search(r"^Task: (.*)$", text, re.M)
    if not m:
        raise ConfigError("the expert answers closed-loop step prompts only (a 'Task: ...' line, as dppo bridge and "
                          "the simulated envs send); this request has none")
    hist = re.search(r"^Previous actions:\n((?:- .*\n?)+)", text, re.M)
    lines = tuple(h[2:] for h in hist.group(1).splitlines()) if hist else ()
    fb = re.search(r"^Feedback: (.*)$", text, re.M)
    feedback = fb.group(1) if fb and fb.group(1) != "none yet." else ""
    return StepText(m.group(1).strip(), lines, feedback)


def _user_text(conv: Conversation) -> str:
    """The last user turn's text (a server keeps the chat in ``history``; a local caller in ``text``)."""
    if conv.text:
        return conv.text
    for turn in reversed(list(conv.history)):
        if turn.get("role") == "user":
            return "\n".join(p.get("text", "") for p in turn["content"] if p.get("type") == "text")
    return ""


def _thumb(image: Any) -> np.ndarray:
    """64 x 64 RGB thumbnail in [0, 1]."""
    from PIL import Image

    im = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image, dtype=np.uint8))
    return np.asarray(im.convert("RGB").resize((64, 64), Image.BILINEAR), dtype=np.float32) / 255.0


class ExpertPolicy:
    """The scripted expert behind the step-conversation interface (see the module docstring).

    Args:
        seed: the first scene seed to try (the bridge's ``--seed``, default 0 for both).
        seeds: how many seeds after ``seed`` are compared with a first frame.
        n_objects: objects per scene, as the sim twin robot draws them.
        camera: the camera the images and point actions refer to.
    """

    def __init__(self, seed: int = 0, seeds: int = 64, n_objects: int | tuple[int, int] = (3, 5),
                 camera: str = "front") -> None:
        if seeds < 1:
            raise ConfigError(f"seeds must be >= 1, got {seeds}")
        self.seed, self.seeds, self.camera = int(seed), int(seeds), camera
        self.n_objects = n_objects
        self._twin: Any = None
        self._thumbs: dict[int, np.ndarray] = {}
        self._next = self.seed  # the seed the next episode most likely uses
        self.episode_seed: int | None = None
        self._executor: Any = None
        self._pending: str | None = None
        self._task: Any = None

    # ------------------------------------------------------------------------------------------------ policy
    def __call__(self, conversations: Sequence[Conversation]) -> list[str]:
        """One JSON action per conversation (each answered in order, on the one episode twin)."""
        return [self.act(c) for c in conversations]

    def act(self, conv: Conversation) -> str:
        """The expert's action for one step conversation."""
        step = read_step_text(_user_text(conv))
        if not conv.images:
            raise ConfigError("the expert needs the camera image of the step")
        image = np.asarray(conv.images[-1].convert("RGB") if hasattr(conv.images[-1], "convert")
                           else conv.images[-1], dtype=np.uint8)
        if not step.history or self._task is None:
            self._start(image, step.instruction)
        else:
            self._follow(step.history[-1])
        from envs.experts import plan_action

        action = plan_action(self._twin.scene, self._task, self.camera)
        self._pending = action_to_json(action)
        return self._pending

    # ------------------------------------------------------------------------------------------------- twin
    def _make_twin(self, image: np.ndarray) -> Any:
        from envs.twin import TabletopTwinRobot

        h, w = image.shape[:2]
        if self._twin is None or self._twin.image_size != (w, h):
            if self._twin is not None:
                self._twin.disconnect()
            self._twin = TabletopTwinRobot(seed=self.seed, image_size=(w, h), cameras=(self.camera,),
                                           n_objects=self.n_objects, depth=False)
            self._twin.connect()
            self._thumbs.clear()
        return self._twin

    def _first_frame(self, seed: int) -> np.ndarray:
        if seed not in self._thumbs:
            self._twin.reset(seed)
            self._thumbs[seed] = _thumb(self._twin.scene.render(self.camera))
        return self._thumbs[seed]

    def _start(self, image: np.ndarray, instruction: str) -> None:
        """A new episode: find its scene by the first frame, read its task, reset the twin to it."""
        from envs.tasks import parse_task

        twin = self._make_twin(image)
        seen = _thumb(image)
        order = [self._next, *(s for s in range(self.seed, self.seed + self.seeds) if s != self._next)]
        if self.episode_seed is not None:
            order.insert(0, self.episode_seed)  # a retried first step of the same episode
        best, best_mse = order[0], float("inf")
        for s in dict.fromkeys(order):
            mse = float(np.mean((self._first_frame(s) - seen) ** 2))
            if mse < best_mse:
                best, best_mse = s, mse
            if mse < SAME_FRAME_MSE:
                break
        if best_mse >= SAME_FRAME_MSE:
            logger.warning("no twin scene among seeds %d..%d matches the first frame (closest: seed %d, mse %.4f); "
                           "start dppo serve --backend expert with the bridge's --seed", self.seed,
                           self.seed + self.seeds - 1, best, best_mse)
        twin.reset(best)
        task = parse_task(instruction, target=(0.0, 0.0))  # the kind and objects; a push/place target comes next
        if task.kind in ("push", "place") and parse_task(instruction, target=(1.0, 1.0)).target == (1.0, 1.0):
            task = parse_task(instruction, target=self._find_target(image))  # no target in the text: the disc
        try:
            twin.set_task(task)
        except (ConfigError, EnvError) as e:
            objects = ", ".join(o.slug for o in twin.scene.spec.objects)
            raise ConfigError(f"task {instruction!r} does not fit the scene of seed {best} ({e}); its objects: "
                              f"{objects}") from e
        from envs.control import Controller
        from envs.executor import Executor

        self._executor = Executor(twin.scene, Controller(twin.scene), self.camera, DEFAULT_SKILLS)
        self._task, self.episode_seed, self._next, self._pending = task, best, best + 1, None
        logger.info("expert: episode on seed %d, task %s", best, task.to_text())

    def _find_target(self, image: np.ndarray) -> tuple[float, float]:
        """The white disc's centre on the table: pixels brighter than the scene without it, back-projected."""
        plain = self._twin.scene.render(self.camera).astype(np.int32)
        img = image.astype(np.int32)
        mask = (np.abs(img - plain).sum(axis=2) > DISC_DIFF) & (img.min(axis=2) > 180)
        vs, us = np.nonzero(mask)
        if len(us) < 4:
            raise ConfigError("the expert sees no white target disc in the first frame; give the bridge a push or "
                              "place task with its target, e.g. 'push red_block at 0.1,0.05'")
        h, w = mask.shape
        p = self._twin.calibration(self.camera).intersect_plane((us.mean() + 0.5) / w, (vs.mean() + 0.5) / h, 0.0)
        if p is None:
            raise ConfigError("the white target disc is not on the table plane")
        return float(p[0]), float(p[1])

    def _follow(self, last: str) -> None:
        """Execute the last answer on the twin when the robot reports it ran it (not refused as invalid)."""
        pending, self._pending = self._pending, None
        if pending is None or not last.startswith(f"{pending} -> ") or " -> Last action is invalid" in last:
            return
        parsed = parse_action(pending, skills=DEFAULT_SKILLS)
        if isinstance(parsed, (NoAnswer, DoneAction)):
            return
        res = self._executor.execute(parsed)
        logger.debug("expert twin: %s -> %s", pending, res.message)

    def close(self) -> None:
        """Free the twin's renderer."""
        if self._twin is not None:
            self._twin.disconnect()
            self._twin = None
