"""Closed-loop episodes: whole-episode rollouts, state-reset GRPO rows and rewards, oracle demonstrations."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("mujoco")

from benchmarks.backends.base import Backend
from dppo_embodied.prompts import COMPACT_SYSTEM_PROMPT
from training.algorithm.env_rollouts import (
    EnvPool,
    EpisodeReward,
    EpisodeRoller,
    episode_rows,
    episode_samples,
    oracle_action,
    oracle_demos,
    replayed_demos,
)

ENV = "dppo/TabletopPick-v0"


class PolicyBackend(Backend):
    """A backend that hands each batch of requests to a policy in one call (as the local engine does)."""

    def __init__(self, policy) -> None:
        super().__init__("policy")
        self.policy = policy

    def generate(self, requests, on_result) -> None:
        for i, text in enumerate(self.policy.generate([r.conversation for r in requests])):
            on_result(i, text)


def engine(policy, tmp_path):
    from training.algorithm.rollout_config import RolloutSettings
    from training.algorithm.rollout_engine import RolloutEngine

    return RolloutEngine(RolloutSettings(), tmp_path, backend=PolicyBackend(policy))


class OraclePolicy:
    """Answers every step prompt with the pick skill for the object named in the task (or garbage)."""

    def __init__(self, good: bool = True) -> None:
        self.good, self.calls = good, 0
        self.model = type("M", (), {"training": False, "eval": lambda self: None, "train": lambda self: None})()

    def generate(self, convs, max_new_tokens=None, temperature=0.0, num_return_sequences=1):
        self.calls += 1
        out = []
        for c in convs:
            assert not c.media_first and len(c.images) == 1  # the step renderer's layout: text, then the image
            task = c.text.split("Task: ")[1].split("\n")[0]  # "Pick up the red cylinder."
            obj = task.removeprefix("Pick up the ").rstrip(".").replace(" ", "_")
            out.append(json.dumps({"action": {"type": "skill", "name": "pick", "object": obj}}) if self.good
                       else "I do not know")
        return out


def test_episode_samples_are_seeds() -> None:
    s = episode_samples([ENV], 3, seed=1)
    assert [x.metadata["seed"] for x in s] == [7919, 7920, 7921]
    assert all(x.metadata["env_id"] == ENV and x.id.startswith(ENV + "#") for x in s)
    assert s[0].capabilities == ["decision_planning", "affordance_function"]


def test_roller_runs_whole_episodes(tmp_path) -> None:
    samples = episode_samples([ENV], 2, seed=0)
    good = EpisodeRoller(engine(OraclePolicy(True), tmp_path), max_steps=2)(samples, 2, 1.0)
    assert good == [[(1.0, True)] * 2] * 2
    bad_policy = OraclePolicy(False)
    bad = EpisodeRoller(engine(bad_policy, tmp_path), max_steps=3)(samples, 2, 1.0)
    assert all(not ok and 0.0 <= r < 0.5 for outs in bad for r, ok in outs)
    assert bad_policy.calls == 3  # three lockstep decisions, batched over the 4 episodes


def test_state_reset_rows_and_reward(tmp_path) -> None:
    samples = episode_samples([ENV], 2, seed=0)
    pool = EnvPool()
    rows, tasks, initial, states = episode_rows(samples, engine(OraclePolicy(False), tmp_path), {}, max_steps=2,
                                                pool=pool, style="compact")
    assert tasks == {s.id: ENV for s in samples} and initial == {s.id: 0.0 for s in samples}
    assert {r["sample_id"] for r in rows} == set(states) and len(rows) == 4  # 2 decision states per seed
    assert all(len(r["images"]) == 1 and r["prompt"][-1]["content"][-1] == {"type": "image"} for r in rows)
    assert all(r["prompt"][0]["content"][0]["text"] == COMPACT_SYSTEM_PROMPT for r in rows)
    later_rows = [r for r in rows if states[r["sample_id"]].prefix]
    assert later_rows and all("- I do not know -> Last action is invalid" in r["prompt"][-1]["content"][0]["text"]
                              for r in later_rows)  # the env's history, in the rows
    later = [sid for sid, st in states.items() if st.prefix]
    assert later and all(len(states[s].prefix) == 1 for s in later)
    reward = EpisodeReward(OraclePolicy(False), states, max_steps=2, pool=pool)
    ids = [r["sample_id"] for r in rows] + ["a-question"]
    obj = dict.fromkeys(ids)
    for r in rows:
        task = r["prompt"][-1]["content"][0]["text"].split("Task: ")[1].split("\n")[0]
        obj[r["sample_id"]] = task.removeprefix("Pick up the ").rstrip(".").replace(" ", "_")
    good = [[{"role": "assistant", "content": json.dumps(
        {"action": {"type": "skill", "name": "pick", "object": obj[i]}})}] if obj[i] else "x" for i in ids]
    bad = [[{"role": "assistant", "content": "no idea"}]] * len(ids)
    assert reward(completions=good, sample_id=ids)[:-1] == [1.0] * len(rows)
    r_bad = reward(completions=bad, sample_id=ids)
    assert r_bad[-1] is None and all(0.0 <= x < 0.5 for x in r_bad[:-1])


def test_oracle_demos_are_verified_by_the_env() -> None:
    samples = episode_samples([ENV], 2, seed=0)
    demos = oracle_demos(samples, max_steps=3, oracle="skills")
    assert len(demos) == 2 and all('"skill"' in target for _, target in demos)
    expert = oracle_demos(samples, max_steps=3, oracle="expert")
    assert expert and all('"point"' in t or '"skill"' in t for _, t in expert)
    import envs

    env = envs.make(ENV)
    env.reset(seed=5)
    assert json.loads(oracle_action(env, "skills"))["action"]["name"] == "pick"


def test_the_policys_own_solved_episodes_replay_into_sft_rows(tmp_path) -> None:
    """D_self of closed-loop seeds: the roller keeps each episode's actions; a solved one replays into the same
    (row, action) steps the oracle would give, a failed one into nothing."""
    samples = episode_samples([ENV], 2, seed=0)
    roller = EpisodeRoller(engine(OraclePolicy(True), tmp_path), max_steps=2, style="compact")
    roller(samples, 1, 1.0)
    texts = {s.id: roller.last_texts[s.id][0] for s in samples}
    assert all(len(json.loads(t)) == 1 for t in texts.values())  # one pick call solves the episode
    own = replayed_demos([(s, texts[s.id]) for s in samples], max_steps=2, style="compact")
    assert own == oracle_demos(samples, max_steps=2, oracle="skills", style="compact")
    assert own and all(row["prompt"][0]["content"][0]["text"] == COMPACT_SYSTEM_PROMPT for row, _ in own)
    wrong = json.dumps(['{"action": {"type": "skill", "name": "pick", "object": "nothing_here"}}'])
    assert replayed_demos([(samples[0], wrong), (samples[1], "not a list")], max_steps=2) == []


def test_d_self_keeps_the_closed_loop_seeds_the_policy_solved(tmp_path) -> None:
    """A solved closed-loop seed stays in the SFT phase's D_self (its replayed episode), so a mastered task is not
    dropped from the mix when it leaves D_weak; an unsolved seed adds nothing."""
    from dppo_embodied.io import atomic_write_json
    from training.algorithm.data_sources_config import DataSettings
    from training.algorithm.diagnosis import Diagnosis
    from training.algorithm.difficulty import SRRecord, table_to_json
    from training.algorithm.sft_sources import own_rollouts

    samples = episode_samples([ENV], 3, seed=0)
    roller = EpisodeRoller(engine(OraclePolicy(True), tmp_path), max_steps=2, style="compact")
    roller(samples[:2], 1, 1.0)
    table = {s.id: SRRecord(sr=1.0, n=1, mean_reward=1.0, task=ENV, capability="decision_planning",
                            success_text=roller.last_texts[s.id][0]) for s in samples[:2]}
    table[samples[2].id] = SRRecord(sr=0.0, n=1, mean_reward=0.0, task=ENV, capability="decision_planning")
    atomic_write_json(tmp_path / "sr" / "k1.json", table_to_json(table))
    data = DataSettings(env_tasks=[ENV], env_max_steps=2, env_prompt="compact")
    own = own_rollouts(tmp_path, 1, Diagnosis(), [], None, samples, data)
    assert own == oracle_demos(samples[:2], max_steps=2, oracle="skills", style="compact") and len(own) == 2


def test_skills_oracle_pushes_the_named_object_onto_the_target() -> None:
    push = "dppo/TabletopPush-v0"
    demos = oracle_demos(episode_samples([push], 3, seed=2), max_steps=2, oracle="skills")
    assert len(demos) == 3  # one call each, every episode verified by the env
    for row, target in demos:
        task = next(c["text"] for c in row["prompt"][-1]["content"] if c["type"] == "text").split("Task: ")[1]
        named = task.removeprefix("Push the ").split(" onto")[0].replace(" ", "_")
        assert json.loads(target)["action"] == {"type": "skill", "name": "push", "object": named, "target": "target"}


def test_pusht_trains_from_its_observation_alone(tmp_path) -> None:
    """Regression: ``data.env_tasks: [dppo/PushT-v0]`` failed (the PushT env had no ``history``)."""
    pytest.importorskip("gym_pusht")
    env_id = "dppo/PushT-v0"
    samples = episode_samples([env_id], 2, seed=0)

    class PointPolicy(OraclePolicy):
        def generate(self, convs, max_new_tokens=None, temperature=0.0, num_return_sequences=1):
            self.calls += 1
            assert all("Available skills" not in c.text and "Task: Push the grey T" in c.text for c in convs)
            return ['{"action": {"type": "point", "x": 0.5, "y": 0.5}}'] * len(convs)

    policy = PointPolicy()
    outcomes = EpisodeRoller(engine(policy, tmp_path), max_steps=2)(samples, 2, 1.0)
    assert len(outcomes) == 2 and all(len(o) == 2 and all(0.0 <= r <= 1.0 for r, _ in o) for o in outcomes)
    pool = EnvPool()
    rows, _, _, states = episode_rows(samples, engine(policy, tmp_path), {}, max_steps=2, pool=pool)
    assert len(rows) == 4 and any("- {" in r["prompt"][-1]["content"][0]["text"] for r in rows)
    point = [[{"role": "assistant", "content": '{"action": {"type": "point", "x": 0.4, "y": 0.4}}'}]] * len(rows)
    rewards = EpisodeReward(policy, states, max_steps=2, pool=pool)(completions=point,
                                                                    sample_id=[r["sample_id"] for r in rows])
    assert all(r is not None and 0.0 <= r <= 1.0 for r in rewards)
    assert oracle_demos(samples, max_steps=2) == []  # no oracle for PushT: no demonstrations, no crash
