"""Closed-loop episodes: whole-episode rollouts, state-reset GRPO rows and rewards, oracle demonstrations."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("mujoco")

from training.algorithm.env_rollouts import (
    EnvPool,
    EpisodeReward,
    EpisodeRoller,
    episode_rows,
    episode_samples,
    oracle_action,
    oracle_demos,
    set_prompt_style,
)

ENV = "dppo/TabletopPick-v0"


class OraclePolicy:
    """Answers every step prompt with the pick skill for the object named in the task (or garbage)."""

    def __init__(self, good: bool = True) -> None:
        self.good, self.calls = good, 0
        self.model = type("M", (), {"training": False, "eval": lambda self: None, "train": lambda self: None})()

    def generate(self, reqs, max_new_tokens=None, temperature=0.0, num_return_sequences=1):
        self.calls += 1
        out = []
        for r in reqs:
            task = r.text.split("Task: ")[1].split("\n")[0]  # "Pick up the red cylinder."
            obj = task.removeprefix("Pick up the ").rstrip(".").replace(" ", "_")
            out.append(json.dumps({"action": {"type": "skill", "name": "pick", "object": obj}}) if self.good
                       else "I do not know")
        return out


@pytest.fixture(autouse=True)
def _compact():
    set_prompt_style("compact")
    yield
    set_prompt_style("full")


def test_episode_samples_are_seeds() -> None:
    s = episode_samples([ENV], 3, seed=1)
    assert [x.metadata["seed"] for x in s] == [7919, 7920, 7921]
    assert all(x.metadata["env_id"] == ENV and x.id.startswith(ENV + "#") for x in s)
    assert s[0].capabilities == ["decision_planning", "affordance_function"]


def test_roller_runs_whole_episodes() -> None:
    samples = episode_samples([ENV], 2, seed=0)
    good = EpisodeRoller(OraclePolicy(True), max_steps=2)(samples, 2, 1.0)
    assert good == [[(1.0, True)] * 2] * 2
    bad_policy = OraclePolicy(False)
    bad = EpisodeRoller(bad_policy, max_steps=3)(samples, 2, 1.0)
    assert all(not ok and 0.0 <= r < 0.5 for outs in bad for r, ok in outs)
    assert bad_policy.calls == 3  # three lockstep decisions, batched over the 4 episodes


def test_state_reset_rows_and_reward() -> None:
    samples = episode_samples([ENV], 2, seed=0)
    pool = EnvPool()
    rows, tasks, initial, states = episode_rows(samples, OraclePolicy(False), {}, max_steps=2, pool=pool)
    assert tasks == {s.id: ENV for s in samples} and initial == {s.id: 0.0 for s in samples}
    assert {r["sample_id"] for r in rows} == set(states) and len(rows) == 4  # 2 decision states per seed
    assert all(len(r["images"]) == 1 and r["prompt"][-1]["content"][0] == {"type": "image"} for r in rows)
    later = [sid for sid, st in states.items() if st.prefix]
    assert later and all(len(states[s].prefix) == 1 for s in later)
    reward = EpisodeReward(OraclePolicy(False), states, max_steps=2, pool=pool)
    ids = [r["sample_id"] for r in rows] + ["a-question"]
    obj = dict.fromkeys(ids)
    for r in rows:
        task = r["prompt"][-1]["content"][1]["text"].split("Task: ")[1].split("\n")[0]
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
