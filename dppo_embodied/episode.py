"""The closed-loop step contract: what a policy sees at one decision, rendered once, and the one episode runner.

Every closed-loop path asks the model the same way:

    observation dict (env or robot) -> StepObservation -> render_step(obs, style) -> Conversation -> model text

* :class:`StepObservation` carries everything the policy sees: the camera image(s), the instruction, the feedback
  of the last action, the history (one line per earlier action, ``"{command} -> {feedback}"``,
  :func:`history_entry`) and the skills the env or robot offers (never inferred from an env id).
* :func:`render_step` turns it into a :class:`~dppo_embodied.conversation.Conversation`: the static system prompt
  of the checkpoint's prompt style (:mod:`dppo_embodied.prompts`), then the step text, then the image(s) last, so
  a serving engine's prefix cache reuses the text across steps (every step brings a new camera image).
* :class:`Episode`, :func:`start_episode`, :func:`play` and :func:`run_episode` drive any env with the small
  text-env protocol (:class:`TextEnv`: Gymnasium ``reset``/``step`` whose observation dict has ``image``,
  ``instruction``, ``feedback``, ``history``, ``skills``; the action is the model's raw text). Training rollouts,
  episode rewards and oracle demonstrations (``training.algorithm.env_rollouts``) and the closed-loop benchmark
  (``benchmarks.closed_loop``) run episodes with it; the robot bridge's planner builds the same
  :class:`StepObservation` from its camera and its executed actions and renders it with :func:`render_step`.

Torch-free; no env import.
"""

from __future__ import annotations

import string
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from dppo_embodied.conversation import Conversation
from dppo_embodied.errors import EnvError
from dppo_embodied.prompts import PromptStyle, build_step_prompt, step_system_prompt

__all__ = ["CHARSET", "MAX_TEXT", "Episode", "EpisodeResult", "Policy", "StepObservation", "TextEnv",
           "ascii_text", "history_entry", "play", "render_step", "run_episode", "start_episode"]

#: Longest instruction/feedback/history text in an observation.
MAX_TEXT = 1024
#: Characters allowed in observation text (and the text-action envs' ``Text`` spaces).
CHARSET = string.printable
#: Longest raw reply quoted in a history line (when it did not parse).
MAX_QUOTED = 200


def ascii_text(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` with every character outside :data:`CHARSET` replaced by ``?``, cut to ``limit`` characters."""
    t = text.encode("ascii", "replace").decode("ascii")
    t = "".join(c if c in CHARSET else "?" for c in t)
    return t[:limit]


def history_entry(command: str | None, reply: Any, feedback: str) -> str:
    """One history line: ``"{command} -> {feedback}"``.

    Args:
        command: the canonical JSON of the parsed action (:func:`dppo_embodied.actions.action_to_json`), or
            ``None`` when the reply did not parse.
        reply: the model's raw reply (quoted on one line, at most :data:`MAX_QUOTED` characters, when ``command``
            is ``None``).
        feedback: what happened (``"Last action succeeded: ..."``, ``"Last action is invalid: <reason>"``...).

    Returns:
        The line, printable ASCII, at most :data:`MAX_TEXT` characters.
    """
    if command is None:
        text = reply if isinstance(reply, str) else ("" if reply is None else repr(reply))
        command = ascii_text(" ".join(text.split()), MAX_QUOTED) or "(empty)"
    return ascii_text(f"{command} -> {feedback}")


@dataclass(frozen=True)
class StepObservation:
    """Everything the policy sees at one decision.

    Attributes:
        images: the camera image(s), in camera order: ``(H, W, 3)`` uint8 arrays or PIL RGB images.
        instruction: the task, e.g. ``"Pick up the red block."``.
        feedback: what happened after the last action (empty on the first step).
        history: earlier actions with their feedback, oldest first (:func:`history_entry` lines).
        skills: the skill names the env or robot offers (empty: no skill actions).
    """

    images: tuple[Any, ...]
    instruction: str
    feedback: str = ""
    history: tuple[str, ...] = ()
    skills: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, obs: Mapping[str, Any]) -> StepObservation:
        """The step observation of a text-action env's observation dict.

        Raises:
            EnvError: the dict has no ``image`` (a ``(H, W, 3)`` uint8 camera image).
        """
        if "image" not in obs:
            raise EnvError(f"a closed-loop observation needs an 'image'; got keys {sorted(obs)}")
        return cls(images=(obs["image"],), instruction=str(obs.get("instruction", "")),
                   feedback=str(obs.get("feedback", "")), history=tuple(str(h) for h in obs.get("history", ())),
                   skills=tuple(str(s) for s in obs.get("skills", ())))


def render_step(obs: StepObservation, style: PromptStyle = "full") -> Conversation:
    """The conversation the model sees at one decision: system prompt, step text, then the image(s).

    Args:
        obs: the step observation (the last :data:`~dppo_embodied.prompts.HISTORY_STEPS` history lines are shown).
        style: the checkpoint's prompt style (:func:`dppo_embodied.prompts.read_prompt_style`).

    Returns:
        A :class:`Conversation` with ``media_first=False`` (static text first, images last).
    """
    text = build_step_prompt(obs.instruction, obs.feedback, obs.history, obs.skills)
    return Conversation(text, images=tuple(obs.images), system=step_system_prompt(style, obs.skills),
                        media_first=False)


class TextEnv(Protocol):
    """The env side of the runner: Gymnasium ``reset``/``step`` with the model's raw text as the action.

    The observation dict holds ``image``, ``instruction``, ``feedback``, ``history`` and ``skills``
    (:meth:`StepObservation.from_env`); ``info`` holds ``is_success``, ``progress``, ``invalid_count``,
    ``command``, ``parse_ok``, ``parse_error``.
    """

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, Any], dict[str, Any]]: ...  # pragma: no cover - protocol

    def step(self, action: str) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]: ...  # pragma: no cover


#: ``policy(conversations) -> one reply per conversation`` (a batched model call).
Policy = Callable[[Sequence[Conversation]], Sequence[str]]
#: ``on_step(episode, conversation, reply)``: called before each reply is stepped.
StepHook = Callable[["Episode", Conversation, str], None]


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
            ``progress``, ``is_success``, ``latency_s`` (time of the policy call that produced the action).
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


@dataclass
class Episode:
    """One episode in progress: the env, its last observation and what happened so far.

    Attributes:
        env: the env.
        seed: the reset seed.
        obs: the last observation dict.
        info: the last ``info``.
        actions: the raw replies stepped so far.
        transcript: one dict per step (see :class:`EpisodeResult`).
        total_reward: sum of rewards.
        terminated: the env terminated (success, ``done``, too many invalid actions).
        truncated: the env truncated (its horizon).
    """

    env: TextEnv
    seed: int
    obs: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)
    actions: list[str] = field(default_factory=list)
    transcript: list[dict[str, Any]] = field(default_factory=list)
    total_reward: float = 0.0
    terminated: bool = False
    truncated: bool = False

    @property
    def done(self) -> bool:
        """The env ended the episode (no further step is allowed)."""
        return self.terminated or self.truncated

    @property
    def steps(self) -> int:
        """Decisions taken."""
        return len(self.actions)

    @property
    def success(self) -> bool:
        """The task is achieved."""
        return bool(self.info.get("is_success", False))

    @property
    def progress(self) -> float:
        """Task progress, 0..1."""
        return float(self.info.get("progress", 0.0))

    @property
    def observation(self) -> StepObservation:
        """What the policy sees now."""
        return StepObservation.from_env(self.obs)

    def conversation(self, style: PromptStyle = "full") -> Conversation:
        """The conversation of the current decision (:func:`render_step`)."""
        return render_step(self.observation, style)

    def step(self, reply: Any, latency_s: float = 0.0) -> None:
        """Step the env with the model's raw reply (any value; the env turns it into text and feedback).

        Raises:
            EnvError: the episode is over.
        """
        if self.done:
            raise EnvError("the episode is over; start a new one")
        before = str(self.obs.get("feedback", ""))
        text = reply if isinstance(reply, str) else ("" if reply is None else repr(reply))
        self.obs, reward, term, trunc, self.info = self.env.step(text)
        self.actions.append(text)
        self.total_reward += float(reward)
        self.terminated, self.truncated = bool(term), bool(trunc)
        self.transcript.append({
            "step": len(self.actions), "instruction": self.obs.get("instruction", ""), "feedback_before": before,
            "action": text, "command": self.info.get("command"), "parse_ok": self.info.get("parse_ok"),
            "parse_error": self.info.get("parse_error"), "feedback": self.obs.get("feedback", ""),
            "reward": float(reward), "progress": self.info.get("progress"), "is_success": self.info.get("is_success"),
            "latency_s": round(latency_s, 6),
        })

    def result(self) -> EpisodeResult:
        """The outcome so far."""
        return EpisodeResult(success=self.success, progress=self.progress, steps=self.steps,
                             invalid=int(self.info.get("invalid_count", 0)), total_reward=self.total_reward,
                             transcript=list(self.transcript), seed=self.seed, terminated=self.terminated)


def start_episode(env: TextEnv, seed: int, prefix: Sequence[str] = ()) -> Episode:
    """Reset ``env`` with ``seed`` and replay ``prefix`` (earlier replies): restores a decision state exactly.

    Replaying stops early when the env ends the episode.
    """
    obs, info = env.reset(seed=seed)
    ep = Episode(env, int(seed), obs, info)
    for reply in prefix:
        if ep.done:
            break
        ep.step(reply)
    return ep


def play(episodes: Sequence[Episode], policy: Policy, style: PromptStyle = "full", max_steps: int | None = None,
         on_step: StepHook | None = None) -> None:
    """Advance ``episodes`` in lockstep, one batched policy call per decision, until each one ends.

    An episode ends when its env terminates or truncates, or when it has taken ``max_steps`` decisions in all
    (replayed prefixes included).

    Args:
        episodes: episodes in progress (finished ones are skipped).
        policy: conversations -> replies, one per conversation.
        style: the prompt style the conversations are rendered in.
        max_steps: decisions per episode at most (``None``: until the env ends it).
        on_step: optional hook called with ``(episode, conversation, reply)`` before each reply is stepped.

    Raises:
        EnvError: the policy returned a different number of replies than it was asked for.
    """
    if max_steps is not None and max_steps < 1:
        raise EnvError(f"max_steps must be >= 1 or None, got {max_steps!r}")
    while True:
        live = [e for e in episodes if not e.done and (max_steps is None or e.steps < max_steps)]
        if not live:
            return
        convs = [e.conversation(style) for e in live]
        t0 = time.perf_counter()
        replies = list(policy(convs))
        latency = time.perf_counter() - t0
        if len(replies) != len(live):
            raise EnvError(f"the policy returned {len(replies)} replies for {len(live)} conversations")
        for ep, conv, reply in zip(live, convs, replies, strict=True):
            if on_step is not None:
                on_step(ep, conv, reply)
            ep.step(reply, latency)


def run_episode(env: TextEnv, act: Callable[[Conversation], str], seed: int, max_steps: int | None = None,
                style: PromptStyle = "full") -> EpisodeResult:
    """Reset ``env`` with ``seed`` and step it with ``act`` until it terminates, truncates or ``max_steps``.

    Args:
        env: a text-action env (e.g. ``envs.make("dppo/TabletopPick-v0")``).
        act: the step's conversation -> the model's reply.
        seed: reset seed (same seed and same replies -> same episode).
        max_steps: optional cap below the env's own horizon.
        style: the prompt style of the conversations.

    Returns:
        The :class:`EpisodeResult`.
    """
    if max_steps is not None and max_steps < 1:
        raise EnvError(f"max_steps must be >= 1 or None, got {max_steps!r}")
    ep = start_episode(env, seed)
    play([ep], lambda convs: [act(c) for c in convs], style, max_steps)
    return ep.result()
