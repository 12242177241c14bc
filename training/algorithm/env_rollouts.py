"""Closed-loop tasks in the metaloop: whole episodes as rollouts, episode success as reward.

An *episode sample* is one (env id, seed) pair (:func:`episode_samples`). Difficulty estimation and diagnosis run
``T`` whole sampled episodes per seed (image -> text action -> env step -> new image and feedback -> ...) with
:class:`EpisodeRoller`; SR is the fraction of successful episodes, so the buffer and the stop rule treat each seed
exactly like a question.

Which TRL hook, and why (trl 1.16, read from its source):

* ``environment_factory`` runs multi-turn episodes through *tool calls*: it needs a chat template that renders
  tool calls and a response parser for it. Qwen2.5-VL's chat template has neither (``supports_tool_calling`` is
  false, ``add_response_schema`` does not know it), so it cannot drive our VLM episodes without replacing the
  model's template and training tool-call syntax.
* ``rollout_func`` returns token ids only; the loss forward pass reuses the *dataset's* images, so the new camera
  image of every later turn could not enter the policy-gradient forward pass.

So we use an equivalent built only on GRPOTrainer's public API — a dataset and a reward function — *state-reset
GRPO*: the RL rows are decision states visited by the current policy (seed + the actions taken so far); the row's
prompt is that step's prompt with that step's image; GRPO samples G actions for it; the reward function
(:class:`EpisodeReward`) restores the state (reset with the seed, replay the prefix), executes the sampled action
and lets the current policy finish the episode greedily; the reward is 1 on success, else ``0.5 x progress``.
Every turn of an episode is thereby trained with its own image and a return that reflects the whole episode.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dppo_embodied.prompts import build_step_prompt, system_prompt
from dppo_embodied.types import AnswerType, EmbodiedSample
from training.algorithm.rewards import RewardRecorder, completion_text

logger = logging.getLogger(__name__)

#: Capability tags of closed-loop samples.
EPISODE_CAPABILITIES = ["decision_planning", "affordance_function"]


def episode_samples(env_ids: Sequence[str], n_seeds: int, seed: int) -> list[EmbodiedSample]:
    """One sample per (env id, seed): ``metadata = {"env_id", "seed"}``; ``answer`` is unused (env-scored)."""
    out = []
    for env_id in env_ids:
        for i in range(n_seeds):
            s = seed * 7919 + i
            out.append(EmbodiedSample(
                id=f"{env_id}#{s}", source=env_id, question=f"closed-loop episode of {env_id}, seed {s}",
                answer={"action": {"type": "done"}}, answer_type=AnswerType.ACTION,
                capabilities=list(EPISODE_CAPABILITIES), metadata={"env_id": env_id, "seed": s, "task": env_id}))
    return out


def make_env(env_id: str) -> Any:
    """A registered dppo env (``envs.make``)."""
    import envs

    return envs.make(env_id)


#: Step prompts: ``full`` = the shared action-envelope system prompt (:func:`dppo_embodied.prompts.system_prompt`,
#: ~500 tokens; for real VLMs) or ``compact`` = no system prompt, only the step prompt listing the skills (tiny
#: models that learn the envelope from demonstrations).
PROMPT_STYLES = ("full", "compact")
_style = {"value": "full"}


def set_prompt_style(style: str) -> None:
    """Choose the step prompt style for this process (``full`` or ``compact``)."""
    if style not in PROMPT_STYLES:
        raise ValueError(f"prompt style must be one of {PROMPT_STYLES}, got {style!r}")
    _style["value"] = style


def step_messages(obs: dict[str, Any], history: Sequence[str], skills: Sequence[str] = ("pick", "place", "push")
                  ) -> tuple[list[dict], Any]:
    """TRL conversational prompt (system + user text + one image placeholder) and the PIL image of one step."""
    from PIL import Image

    text = build_step_prompt(obs.get("instruction", ""), obs.get("feedback", ""), history,
                             skills if _style["value"] == "compact" else ())
    user = {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}
    if _style["value"] == "compact":
        return [{"role": "system", "content": [{"type": "text", "text": "You are a robot."}]}, user], \
            Image.fromarray(obs["image"])
    msgs = [{"role": "system", "content": [{"type": "text", "text": system_prompt()}]}, user]
    return msgs, Image.fromarray(obs["image"])


@dataclass
class _Run:
    """One episode in progress."""

    sample_id: str
    env: Any
    obs: dict[str, Any]
    actions: list[str] = field(default_factory=list)
    done: bool = False
    success: bool = False
    progress: float = 0.0


def _request(run: _Run) -> Any:
    from inference.policy import ChatRequest

    msgs, image = step_messages(run.obs, run.env.unwrapped.history)
    return ChatRequest(msgs[1]["content"][1]["text"], images=[image], system=msgs[0]["content"][0]["text"])


def play(policy: Any, runs: list[_Run], max_steps: int, temperature: float, max_new_tokens: int) -> None:
    """Advance all ``runs`` in lockstep (one batched generation per step) until done or ``max_steps`` decisions."""
    for _ in range(max_steps):
        live = [r for r in runs if not r.done]
        if not live:
            break
        texts = policy.generate([_request(r) for r in live], max_new_tokens=max_new_tokens, temperature=temperature)
        for r, text in zip(live, texts, strict=False):
            obs, _, term, trunc, info = r.env.step(text)
            r.obs, r.success, r.progress = obs, bool(info.get("is_success")), float(info.get("progress", 0.0))
            r.actions.append(text)
            r.done = bool(term or trunc or r.success) or len(r.actions) >= max_steps
    for r in runs:
        r.done = True


def episode_reward(success: bool, progress: float) -> float:
    """1 on success, else half the task progress (in [0, 0.5])."""
    return 1.0 if success else 0.5 * max(0.0, min(1.0, progress))


class EnvPool:
    """Reusable env instances per env id: creating a MuJoCo scene costs ~0.2 s, resetting a pooled one ~4 ms."""

    def __init__(self) -> None:
        self._free: dict[str, list[Any]] = {}

    def get(self, env_id: str) -> Any:
        """A free env of ``env_id``."""
        pool = self._free.setdefault(env_id, [])
        return pool.pop() if pool else make_env(env_id)

    def put(self, env_id: str, env: Any) -> None:
        """Return an env to the pool."""
        self._free.setdefault(env_id, []).append(env)


#: The process-wide pool used when no pool is given.
POOL = EnvPool()


def _start(pool: EnvPool, sample_id: str, env_id: str, seed: int, prefix: Sequence[str] = ()) -> _Run:
    env = pool.get(env_id)
    obs, _ = env.reset(seed=seed)
    run = _Run(sample_id, env, obs)
    for a in prefix:  # restore a decision state by replaying the actions that led to it
        obs, _, term, trunc, info = env.step(a)
        run.obs, run.success, run.progress = obs, bool(info.get("is_success")), float(info.get("progress", 0.0))
        run.actions.append(a)
        if term or trunc:
            run.done = True
            break
    return run


class EpisodeRoller:
    """``T`` whole episodes per episode sample with the current policy; outcome = (episode reward, success).

    Args:
        policy: a :class:`inference.policy.VLMPolicy`.
        max_steps: decisions per episode.
        max_new_tokens: generation cap per action.
        pool: env pool (shared).
    """

    def __init__(self, policy: Any, max_steps: int = 6, max_new_tokens: int = 48, pool: EnvPool | None = None,
                 max_concurrent: int = 32) -> None:
        self.policy, self.max_steps, self.max_new_tokens = policy, max_steps, max_new_tokens
        self.pool, self.max_concurrent = pool or POOL, max_concurrent
        self.transcripts: dict[str, list[list[str]]] = {}

    def __call__(self, samples: Sequence[EmbodiedSample], n: int,
                 temperature: float) -> list[list[tuple[float, bool]]]:
        """Run ``n`` episodes per sample (at most ``max_concurrent`` live envs, reused from the pool)."""
        jobs = [s for s in samples for _ in range(n)]
        runs: list[_Run] = []
        for i in range(0, len(jobs), self.max_concurrent):
            part = [_start(self.pool, s.id, s.metadata["env_id"], int(s.metadata["seed"]))
                    for s in jobs[i:i + self.max_concurrent]]
            play(self.policy, part, self.max_steps, temperature, self.max_new_tokens)
            for r, s in zip(part, jobs[i:i + self.max_concurrent], strict=True):
                self.pool.put(s.metadata["env_id"], r.env)
            runs += part
        out: list[list[tuple[float, bool]]] = []
        for i, s in enumerate(samples):
            mine = runs[i * n:(i + 1) * n]
            self.transcripts[s.id] = [r.actions for r in mine]
            out.append([(episode_reward(r.success, r.progress), r.success) for r in mine])
        return out


@dataclass
class DecisionState:
    """A state of an episode sample: replay ``prefix`` after ``reset(seed)``."""

    sample_id: str
    env_id: str
    seed: int
    prefix: list[str]


def episode_rows(episodes: Sequence[EmbodiedSample], policy: Any, table: dict[str, Any], max_steps: int,
                 seed: int = 0, max_new_tokens: int = 48, pool: EnvPool | None = None
                 ) -> tuple[list[dict[str, Any]], dict[str, str], dict[str, float], dict[str, DecisionState]]:
    """GRPO rows for the decision states of one sampled episode per seed.

    Returns:
        ``(rows, tasks, initial_sr, states)``: dataset rows whose ``sample_id`` is ``<seed id>@<t>``; the task
        and initial SR of every episode sample; the decision state behind every row id.
    """
    pool = pool or POOL
    rng = random.Random(seed)
    runs = [_start(pool, s.id, s.metadata["env_id"], int(s.metadata["seed"])) for s in episodes]
    play(policy, runs, max_steps, 1.0, max_new_tokens)
    rows, states = [], {}
    for s, r in zip(episodes, runs, strict=False):
        for t in range(max(1, len(r.actions))):
            prefix = r.actions[:t]
            state = _start(pool, s.id, s.metadata["env_id"], int(s.metadata["seed"]), prefix)
            if state.done and t > 0:
                pool.put(s.metadata["env_id"], state.env)
                break
            msgs, image = step_messages(state.obs, state.env.unwrapped.history)
            row_id = f"{s.id}@{t}"
            rows.append({"prompt": msgs, "images": [image], "sample_id": row_id})
            states[row_id] = DecisionState(s.id, s.metadata["env_id"], int(s.metadata["seed"]), list(prefix))
            pool.put(s.metadata["env_id"], state.env)
        pool.put(s.metadata["env_id"], r.env)
    rng.shuffle(rows)
    tasks = {s.id: s.metadata["env_id"] for s in episodes}
    initial = {s.id: float(getattr(table.get(s.id), "sr", 0.0)) for s in episodes}
    return rows, tasks, initial, states


class EpisodeReward:
    """GRPO reward of closed-loop rows: restore the state, run the sampled action, finish the episode greedily.

    Returns ``None`` for non-episode rows. Records ``(step, episode sample id, reward, success)``.

    Args:
        policy: the policy that finishes episodes (shares the weights being trained).
        states: row id -> :class:`DecisionState`.
        max_steps: decisions per episode.
        max_new_tokens: generation cap per action.
        recorder: reward recorder (set by the RL phase).
    """

    __name__ = "episode"

    def __init__(self, policy: Any, states: dict[str, DecisionState], max_steps: int = 6, max_new_tokens: int = 48,
                 recorder: RewardRecorder | None = None, pool: EnvPool | None = None) -> None:
        self.policy, self.states, self.max_steps, self.max_new_tokens = policy, states, max_steps, max_new_tokens
        self.recorder, self.pool = recorder, pool or POOL

    def __call__(self, prompts: Any = None, completions: Sequence[Any] = (), sample_id: Sequence[str] = (),
                 trainer_state: Any = None, **kwargs: Any) -> list[float | None]:
        """Score every episode row of the batch (batched across rows)."""
        idx = [i for i, sid in enumerate(sample_id) if sid in self.states]
        out: list[float | None] = [None] * len(sample_id)
        if not idx:
            return out
        runs = []
        for i in idx:
            st = self.states[sample_id[i]]
            run = _start(self.pool, st.sample_id, st.env_id, st.seed, st.prefix)
            if not run.done:
                obs, _, term, trunc, info = run.env.step(completion_text(completions[i]))
                run.obs, run.success = obs, bool(info.get("is_success"))
                run.progress = float(info.get("progress", 0.0))
                run.actions.append(completion_text(completions[i]))
                run.done = bool(term or trunc or run.success) or len(run.actions) >= self.max_steps
            runs.append(run)
        was_training = self.policy.model.training
        self.policy.model.eval()
        play(self.policy, runs, self.max_steps, 0.0, self.max_new_tokens)
        if was_training:
            self.policy.model.train()
        ok = []
        for i, r in zip(idx, runs, strict=False):
            out[i] = episode_reward(r.success, r.progress)
            ok.append(r.success)
            self.pool.put(self.states[sample_id[i]].env_id, r.env)
        if self.recorder is not None:
            step = int(getattr(trainer_state, "global_step", 0) or 0)
            self.recorder.record(step, [self.states[sample_id[i]].sample_id for i in idx], [out[i] for i in idx], ok)
        return out


def oracle_action(env: Any, oracle: str = "expert") -> str:
    """The simulated world's oracle action for the current state.

    ``expert``: the scripted expert (``envs.experts.expert_action``, mostly image-point actions). ``skills``: the
    named skill when the task is a single skill call the env offers (pick), else the expert.
    """
    from envs.experts import expert_action

    inner = env.unwrapped
    task = getattr(inner, "task", None)
    if oracle == "skills" and task is not None and getattr(inner, "kind", "") == "pick" and "pick" in inner.skills:
        return json.dumps({"action": {"type": "skill", "name": "pick", "object": task.objects[0]}})
    return expert_action(env)


def oracle_demos(episodes: Sequence[EmbodiedSample], max_steps: int, oracle: str = "expert",
                 pool: EnvPool | None = None) -> list[tuple[dict[str, Any], str]]:
    """Verified SFT demonstrations of episode samples: (row, action) for every step of a successful oracle episode.

    The row has ``prompt`` (the step conversation) and ``images``; episodes the oracle does not finish
    successfully within ``max_steps`` are dropped (verification by the environment itself).
    """
    pool = pool or POOL
    out = []
    for s in episodes:
        run = _start(pool, s.id, s.metadata["env_id"], int(s.metadata["seed"]))
        steps: list[tuple[dict[str, Any], str]] = []
        info: dict[str, Any] = {}
        for _ in range(max_steps):
            action = oracle_action(run.env, oracle)
            msgs, image = step_messages(run.obs, run.env.unwrapped.history)
            steps.append(({"prompt": msgs, "images": [image]}, action))
            run.obs, _, term, trunc, info = run.env.step(action)
            if term or trunc or info.get("is_success"):
                break
        if info.get("is_success"):
            out += steps
        else:
            logger.warning("oracle episode of %s did not succeed in %d steps; not used for SFT", s.id, max_steps)
        pool.put(s.metadata["env_id"], run.env)
    return out
