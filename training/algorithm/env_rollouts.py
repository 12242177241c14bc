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
from dataclasses import dataclass
from typing import Any

from dppo_embodied.conversation import Conversation
from dppo_embodied.episode import Episode, Policy, play, start_episode
from dppo_embodied.errors import EnvError
from dppo_embodied.generation import ChatRequest, GenerationSettings
from dppo_embodied.images import load_image
from dppo_embodied.prompts import PromptStyle
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


def step_row(conv: Conversation) -> dict[str, Any]:
    """A TRL conversational row of one decision: ``prompt`` (the step's chat messages, images last) and
    ``images`` (PIL RGB), the same :class:`Conversation` the rollouts generate from."""
    return {"prompt": conv.chat_messages(), "images": [load_image(im) for im in conv.images]}


def policy_fn(policy: Any, temperature: float, max_new_tokens: int) -> Policy:
    """The runner's ``policy(conversations) -> replies`` over a :class:`inference.policy.VLMPolicy` (one batch):
    the live model, for the GRPO phase's episode rewards (the weights being trained)."""
    def generate(convs: Sequence[Conversation]) -> list[str]:
        return list(policy.generate(list(convs), max_new_tokens=max_new_tokens, temperature=temperature))

    return generate


def engine_policy(engine: Any, episodes: Sequence[Episode], names: dict[int, str], settings: GenerationSettings,
                  max_steps: int | None, journal: Any = None, failures: dict[int, str] | None = None) -> Policy:
    """The runner's ``policy(conversations) -> replies`` on the rollout engine, for ``play(episodes, ...)``.

    :func:`~dppo_embodied.episode.play` asks for the live episodes in order, so each conversation is known as
    ``<name>@<decision>`` (``names``: episode id -> ``<sample id>#<rollout index>``), the journal key of that decision:
    a resumed step replays journaled decisions without sending them. A decision that failed for good is answered
    ``""`` (an invalid action) and the episode's first reason is kept in ``failures`` (episode id -> reason).
    """
    def generate(convs: Sequence[Conversation]) -> list[str]:
        live = [e for e in episodes if not e.done and (max_steps is None or e.steps < max_steps)]
        if len(live) != len(convs):
            raise EnvError(f"engine_policy: {len(convs)} conversations for {len(live)} live episodes")
        keys = [f"{names[id(e)]}@{e.steps}" for e in live]
        texts = engine.generate([ChatRequest(c, settings) for c in convs], keys, journal)
        out = []
        for e, t in zip(live, texts, strict=True):
            if not isinstance(t, str):
                if failures is not None:
                    failures.setdefault(id(e), str(t))
                t = ""
            out.append(t)
        return out

    return generate


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


def _start(pool: EnvPool, env_id: str, seed: int, prefix: Sequence[str] = ()) -> Episode:
    """A pooled env reset with ``seed``, ``prefix`` replayed (:func:`dppo_embodied.episode.start_episode`)."""
    return start_episode(pool.get(env_id), seed, prefix)


class EpisodeRoller:
    """``T`` whole episodes per episode sample on the rollout engine; outcome = (episode reward, success).

    Args:
        engine: the :class:`~training.algorithm.rollout_engine.RolloutEngine` serving the current checkpoint.
        max_steps: decisions per episode.
        max_new_tokens: generation cap per action.
        pool: env pool (shared).
        max_concurrent: live envs at most (one batched generation per decision across them).
        style: the checkpoint's step prompt style (:func:`dppo_embodied.prompts.read_prompt_style`).
        journal: the step's journal (key ``<sample id>#<rollout index>@<decision>``).
    """

    def __init__(self, engine: Any, max_steps: int = 6, max_new_tokens: int = 48, pool: EnvPool | None = None,
                 max_concurrent: int = 32, style: PromptStyle = "full", journal: Any = None) -> None:
        self.engine, self.max_steps, self.max_new_tokens = engine, max_steps, max_new_tokens
        self.pool, self.max_concurrent, self.style, self.journal = pool or POOL, max_concurrent, style, journal
        self.last_texts: dict[str, list[str]] = {}
        self.failures: dict[str, list[str]] = {}

    def __call__(self, samples: Sequence[EmbodiedSample], n: int,
                 temperature: float) -> list[list[tuple[float, bool]]]:
        """Run ``n`` episodes per sample (at most ``max_concurrent`` live envs, reused from the pool)."""
        jobs = [(s, r) for s in samples for r in range(n)]
        settings = GenerationSettings(max_tokens=self.max_new_tokens, temperature=temperature)
        runs: list[Episode] = []
        failed: dict[int, str] = {}
        for i in range(0, len(jobs), self.max_concurrent):
            part = jobs[i:i + self.max_concurrent]
            eps = [_start(self.pool, s.metadata["env_id"], int(s.metadata["seed"])) for s, _ in part]
            names = {id(e): f"{s.id}#{r}" for e, (s, r) in zip(eps, part, strict=True)}
            play(eps, engine_policy(self.engine, eps, names, settings, self.max_steps, self.journal, failed),
                 self.style, self.max_steps)
            for e, (s, _) in zip(eps, part, strict=True):
                self.pool.put(s.metadata["env_id"], e.env)
                if id(e) in failed:
                    self.failures.setdefault(s.id, []).append(failed.pop(id(e)))
                    e.info = {**e.info, "is_success": False, "progress": 0.0}  # a failed rollout counts as failed
            runs += eps
        out: list[list[tuple[float, bool]]] = []
        for i, s in enumerate(samples):
            mine = runs[i * n:(i + 1) * n]
            self.last_texts[s.id] = [episode_text(r.actions) for r in mine]
            out.append([(episode_reward(r.success, r.progress), r.success) for r in mine])
        return out


@dataclass
class DecisionState:
    """A state of an episode sample: replay ``prefix`` after ``reset(seed)``."""

    sample_id: str
    env_id: str
    seed: int
    prefix: list[str]


def episode_rows(episodes: Sequence[EmbodiedSample], engine: Any, table: dict[str, Any], max_steps: int,
                 seed: int = 0, max_new_tokens: int = 48, pool: EnvPool | None = None, style: PromptStyle = "full",
                 journal: Any = None
                 ) -> tuple[list[dict[str, Any]], dict[str, str], dict[str, float], dict[str, DecisionState]]:
    """GRPO rows for the decision states of one sampled episode per seed, played on the rollout engine
    (``engine``; decisions journaled as ``<sample id>#0@<decision>`` in ``journal``).

    Returns:
        ``(rows, tasks, initial_sr, states)``: dataset rows (:func:`step_row`) whose ``sample_id`` is
        ``<seed id>@<t>``; the task and initial SR of every episode sample; the decision state behind every row id.
    """
    pool = pool or POOL
    rng = random.Random(seed)
    runs = [_start(pool, s.metadata["env_id"], int(s.metadata["seed"])) for s in episodes]
    names = {id(e): f"{s.id}#0" for e, s in zip(runs, episodes, strict=True)}
    settings = GenerationSettings(max_tokens=max_new_tokens, temperature=1.0)
    play(runs, engine_policy(engine, runs, names, settings, max_steps, journal), style, max_steps)
    rows, states = [], {}
    for s, r in zip(episodes, runs, strict=False):
        for t in range(max(1, r.steps)):
            prefix = r.actions[:t]
            state = _start(pool, s.metadata["env_id"], int(s.metadata["seed"]), prefix)
            if state.done and t > 0:
                pool.put(s.metadata["env_id"], state.env)
                break
            row_id = f"{s.id}@{t}"
            rows.append({**step_row(state.conversation(style)), "sample_id": row_id})
            states[row_id] = DecisionState(s.id, s.metadata["env_id"], int(s.metadata["seed"]), list(prefix))
            pool.put(s.metadata["env_id"], state.env)
        pool.put(s.metadata["env_id"], r.env)
    rng.shuffle(rows)
    tasks = {s.id: s.metadata["env_id"] for s in episodes}
    initial = {s.id: float(getattr(table.get(s.id), "sr", 0.0)) for s in episodes}
    return rows, tasks, initial, states


class EpisodeReward:
    """GRPO reward of closed-loop rows: restore the state, run the sampled action, finish the episode greedily.

    The episode is finished by the live model (the weights being trained, step by step), not by the rollout
    engine: served replicas hold the checkpoint of the phase's start, and a reward computed with them would score
    every later GRPO step against a stale policy.

    Returns ``None`` for non-episode rows. Records ``(step, episode sample id, reward, success)``.

    Args:
        policy: the policy that finishes episodes (shares the weights being trained).
        states: row id -> :class:`DecisionState`.
        max_steps: decisions per episode.
        max_new_tokens: generation cap per action.
        recorder: reward recorder (set by the RL phase).
        pool: env pool (shared).
        style: the checkpoint's step prompt style.
    """

    __name__ = "episode"

    def __init__(self, policy: Any, states: dict[str, DecisionState], max_steps: int = 6, max_new_tokens: int = 48,
                 recorder: RewardRecorder | None = None, pool: EnvPool | None = None,
                 style: PromptStyle = "full") -> None:
        self.policy, self.states, self.max_steps, self.max_new_tokens = policy, states, max_steps, max_new_tokens
        self.recorder, self.pool, self.style = recorder, pool or POOL, style

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
            run = _start(self.pool, st.env_id, st.seed, st.prefix)  # restore the decision state
            if not run.done and run.steps < self.max_steps:
                run.step(completion_text(completions[i]))  # the sampled action
            runs.append(run)
        was_training = self.policy.model.training
        self.policy.model.eval()
        play(runs, policy_fn(self.policy, 0.0, self.max_new_tokens), self.style, self.max_steps)  # finish greedily
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


def has_oracle(env: Any) -> bool:
    """Whether the simulated world can demonstrate ``env``'s task (the tabletop envs; not PushT)."""
    inner = getattr(env, "unwrapped", env)
    return hasattr(inner, "task") and hasattr(inner, "scene")


#: Tasks one named-skill call solves: task kind -> the call's fields besides its name and object.
_ONE_CALL_SKILLS: dict[str, dict[str, str]] = {"pick": {}, "push": {"target": "target"}}


def oracle_action(env: Any, oracle: str = "expert") -> str:
    """The simulated world's oracle action for the current state.

    ``expert``: the scripted expert (``envs.experts.expert_action``, mostly image-point actions). ``skills``: the
    named skill when the task is a single skill call the env offers (pick the object; push it onto the target
    disc), else the expert.
    """
    from envs.experts import expert_action

    inner = env.unwrapped
    task = getattr(inner, "task", None)
    kind = getattr(inner, "kind", "")
    if oracle == "skills" and task is not None and kind in _ONE_CALL_SKILLS and kind in inner.skills:
        return json.dumps({"action": {"type": "skill", "name": kind, "object": task.objects[0],
                                      **_ONE_CALL_SKILLS[kind]}})
    return expert_action(env)


def episode_text(actions: Sequence[str]) -> str:
    """An episode rollout as one text, the JSON list of its actions (the difficulty table's ``success_text``)."""
    return json.dumps(list(actions))


def _demonstrate(s: EmbodiedSample, act: Any, max_steps: int, pool: EnvPool, style: PromptStyle,
                 what: str) -> list[tuple[dict[str, Any], str]]:
    """(row, action) for every step of ``s``'s episode played by ``act(env, step) -> action``; ``[]`` unless the
    episode succeeds within ``max_steps`` (the environment verifies it). ``what == "oracle"`` needs an env the
    simulated world can demonstrate (:func:`has_oracle`)."""
    env_id = s.metadata["env_id"]
    run = _start(pool, env_id, int(s.metadata["seed"]))
    if what == "oracle" and not has_oracle(run.env):
        logger.warning("%s has no oracle to demonstrate it; %s is not used for SFT", env_id, s.id)
        pool.put(env_id, run.env)
        return []
    steps: list[tuple[dict[str, Any], str]] = []

    def record(ep: Episode, conv: Conversation, action: str) -> None:
        steps.append((step_row(conv), action))

    try:
        play([run], lambda convs: [act(run.env, run.steps)], style, max_steps, on_step=record)
    finally:
        pool.put(env_id, run.env)
    if run.success:
        return steps
    logger.warning("%s episode of %s did not succeed in %d steps; not used for SFT", what, s.id, max_steps)
    return []


def oracle_demos(episodes: Sequence[EmbodiedSample], max_steps: int, oracle: str = "expert",
                 pool: EnvPool | None = None, style: PromptStyle = "full") -> list[tuple[dict[str, Any], str]]:
    """Verified SFT demonstrations of episode samples: (row, action) for every step of a successful oracle episode.

    The row is :func:`step_row` of the step's conversation; episodes the oracle does not finish successfully within
    ``max_steps`` are dropped (verification by the environment itself), and so are envs without an oracle (PushT).
    """
    pool = pool or POOL
    out: list[tuple[dict[str, Any], str]] = []
    for s in episodes:
        out += _demonstrate(s, lambda env, _: oracle_action(env, oracle), max_steps, pool, style, "oracle")
    return out


def replayed_demos(runs: Sequence[tuple[EmbodiedSample, str]], max_steps: int, pool: EnvPool | None = None,
                   style: PromptStyle = "full") -> list[tuple[dict[str, Any], str]]:
    """The policy's own successful episodes as SFT rows: each ``(sample, episode_text(actions))`` is replayed from
    its seed and kept, step by step, only if it succeeds again (D_self of closed-loop seeds; no teacher call)."""
    pool = pool or POOL
    out: list[tuple[dict[str, Any], str]] = []
    for s, text in runs:
        try:
            actions = [str(a) for a in json.loads(text)]
        except (ValueError, TypeError):
            logger.warning("%s: its rollout text is not an episode's action list; not used for SFT", s.id)
            continue
        out += _demonstrate(s, lambda env, i, a=actions: a[i] if i < len(a) else "", max_steps, pool, style,
                            "replayed")
    return out
