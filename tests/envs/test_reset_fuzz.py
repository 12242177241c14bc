"""Reset after any history: random valid actions (grasps, closed grippers, pushes, skills) then ``reset`` with new
seeds, over every registered env and the sim twin.

Regression of issue 9: closing the gripper on nothing switched on a geom that was not compiled to collide, and the
next ``reset`` died in ``mj_setConst`` (``setBound: geom 7 collides but was not compiled to collide``). Besides "no
crash", each round checks determinism: the same seed gives the same first observation as a fresh env, whatever
happened before.

:func:`fuzz_env` and :func:`fuzz_twin` return their counts, so larger runs can be measured with the same code::

    .venv/bin/python -c "from tests.envs.test_reset_fuzz import fuzz_all; print(fuzz_all(rounds=40, actions=8))"
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

import envs
from dppo_embodied.imports import is_available

pytest.importorskip("mujoco")

pytestmark = pytest.mark.mujoco

ALL = [pytest.param(i, marks=pytest.mark.skipif("PushT" in i and not is_available("gym_pusht"),
                                                reason="gym-pusht not installed")) for i in envs.env_ids()]
#: seeds whose first observation is compared with a fresh env after the random history
REF_SEEDS = (11, 4242)


@dataclass
class FuzzStats:
    """What a fuzz run tried and what broke."""

    actions: int = 0
    resets: int = 0
    crashes: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)

    def add(self, other: FuzzStats) -> None:
        self.actions += other.actions
        self.resets += other.resets
        self.crashes += other.crashes
        self.mismatches += other.mismatches


def random_action(rng: random.Random, objects: list[str]) -> str:
    """One valid text action: a move (often closing or opening the gripper), a point with a follow-up, a skill on
    a scene object, or done."""
    kind = rng.choices(["move", "point", "skill", "done"], weights=[5, 3, 3, 1])[0]
    if kind == "move":
        a: dict[str, Any] = {"type": "move", "dx_cm": round(rng.uniform(-8, 8), 1),
                             "dy_cm": round(rng.uniform(-8, 8), 1), "dz_cm": round(rng.uniform(-15, 5), 1)}
        grip = rng.choice(["close", "close", "open", None])
        if grip is not None:
            a["gripper"] = grip
    elif kind == "point":
        a = {"type": "point", "x": round(rng.uniform(0.1, 0.9), 3), "y": round(rng.uniform(0.2, 0.9), 3),
             "then": rng.choice(["grasp", "grasp", "place", "push", "move_to"])}
    elif kind == "skill":
        name = rng.choice(["pick", "pick", "place", "push", "home"])
        a = {"type": "skill", "name": name}
        if name in ("pick", "push") and objects:
            a["object"] = rng.choice(objects)
        if name == "push":
            a["target"] = rng.choice(["left", "right", "away", "toward", "target"])
        if name == "place":
            a["target"] = rng.choice(["table", "target", *objects])
    else:
        a = {"type": "done"}
    return json.dumps({"action": a})


def _objects(env: Any) -> list[str]:
    spec = getattr(getattr(env.unwrapped, "_scene", None), "spec", None)
    return [o.slug for o in spec.objects] if spec is not None else []


def _same_obs(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return set(a) == set(b) and all(
        np.array_equal(a[k], b[k]) if isinstance(a[k], np.ndarray) else a[k] == b[k] for k in a)


def fuzz_env(env_id: str, rounds: int, actions: int, seed: int = 0) -> FuzzStats:
    """``rounds`` x (reset with a new seed, ``actions`` random valid actions), then a reset to each reference seed
    compared with a fresh env's first observation."""
    rng, st = random.Random(f"{env_id}/{seed}"), FuzzStats()
    kwargs: dict[str, Any] = {"image_size": 48, "max_invalid": 1000, "horizon": 1000}
    if "Tabletop" in env_id:
        kwargs["include_state"] = True
    ref = {}
    for s in REF_SEEDS:
        fresh = envs.make(env_id, **kwargs)
        ref[s] = fresh.reset(seed=s)[0]
        fresh.close()
    env = envs.make(env_id, **kwargs)
    try:
        for r in range(rounds):
            try:
                env.reset(seed=rng.randrange(2**31 - 1))
                st.resets += 1
                for _ in range(actions):
                    *_, terminated, truncated, _info = env.step(random_action(rng, _objects(env)))
                    st.actions += 1
                    if terminated or truncated:  # success or done: the next episode starts from this state
                        env.reset(seed=rng.randrange(2**31 - 1))
                        st.resets += 1
                s = REF_SEEDS[r % len(REF_SEEDS)]
                obs = env.reset(seed=s)[0]
                st.resets += 1
                if not _same_obs(obs, ref[s]):
                    st.mismatches.append(f"{env_id} round {r}: reset(seed={s}) differs from a fresh env")
            except Exception as e:  # counted, then the env is rebuilt so the next round starts clean
                st.crashes.append(f"{env_id} round {r}: {type(e).__name__}: {e}")
                env.close()
                env = envs.make(env_id, **kwargs)
    finally:
        env.close()
    return st


def fuzz_twin(rounds: int, actions: int, seed: int = 0) -> FuzzStats:
    """The same on :class:`envs.twin.TabletopTwinRobot`: random absolute targets with the gripper closing and
    opening (grasping whatever is between the fingers), then seeded resets."""
    from envs.twin import TabletopTwinRobot

    rng, st = random.Random(f"twin/{seed}"), FuzzStats()
    ref = {}
    for s in REF_SEEDS:
        with TabletopTwinRobot(seed=s, image_size=48) as fresh:
            ref[s] = fresh.get_observation()
    robot = TabletopTwinRobot(image_size=48, max_relative_target=0.05)
    robot.connect()
    try:
        for r in range(rounds):
            try:
                robot.reset(rng.randrange(2**31 - 1))
                st.resets += 1
                objects = list(robot.scene_state()["objects"].values())
                for _ in range(actions):
                    x, y, z = rng.choice(objects) if objects and rng.random() < 0.6 else (
                        rng.uniform(-0.25, 0.25), rng.uniform(-0.2, 0.25), rng.uniform(0.0, 0.3))
                    for _tick in range(rng.randint(1, 12)):
                        robot.send_action({"ee.x": x, "ee.y": y, "ee.z": z + rng.uniform(-0.02, 0.03),
                                           "gripper.pos": float(rng.random() < 0.6)})
                    st.actions += 1
                s = REF_SEEDS[r % len(REF_SEEDS)]
                robot.reset(s)
                st.resets += 1
                if not _same_obs(robot.get_observation(), ref[s]):
                    st.mismatches.append(f"twin round {r}: reset({s}) differs from a fresh twin")
            except Exception as e:
                st.crashes.append(f"twin round {r}: {type(e).__name__}: {e}")
                robot.disconnect()
                robot.connect()
    finally:
        robot.disconnect()
    return st


def fuzz_all(rounds: int, actions: int, seed: int = 0) -> dict[str, Any]:
    """Every registered env (PushT when gym-pusht is installed) and the twin; a JSON-ready summary."""
    total, per = FuzzStats(), {}
    ids = [i for i in envs.env_ids() if "PushT" not in i or is_available("gym_pusht")]
    for env_id in ids:
        st = fuzz_env(env_id, rounds, actions, seed)
        per[env_id] = {"actions": st.actions, "resets": st.resets, "crashes": len(st.crashes),
                       "mismatches": len(st.mismatches)}
        total.add(st)
    st = fuzz_twin(rounds, actions, seed)
    per["twin"] = {"actions": st.actions, "resets": st.resets, "crashes": len(st.crashes),
                   "mismatches": len(st.mismatches)}
    total.add(st)
    return {"per_env": per, "actions": total.actions, "resets": total.resets, "crashes": total.crashes,
            "mismatches": total.mismatches}


def test_issue_repro_close_on_nothing_then_reset() -> None:
    env = envs.make("dppo/TabletopPick-v0", image_size=48)
    try:
        env.reset(seed=0)
        info = env.step('{"action": {"type": "move", "dx_cm": 0, "gripper": "close"}}')[4]
        assert "closed the gripper" in info["feedback"]
        env.reset(seed=1)  # crashed in mj_setConst before the fix
        env.reset(seed=2)
    finally:
        env.close()


def test_random_actions_include_grasps_and_closed_grippers() -> None:
    rng = random.Random(0)
    texts = [random_action(rng, ["red_block"]) for _ in range(300)]
    assert any('"gripper": "close"' in t for t in texts) and any('"then": "grasp"' in t for t in texts)
    assert any('"name": "pick"' in t for t in texts)


@pytest.mark.parametrize("env_id", ALL)
def test_reset_after_random_history(env_id: str) -> None:
    st = fuzz_env(env_id, rounds=4, actions=5)
    assert st.crashes == [] and st.mismatches == []
    assert st.resets >= 8 and st.actions == 20


def test_twin_reset_after_random_history() -> None:
    st = fuzz_twin(rounds=4, actions=6)
    assert st.crashes == [] and st.mismatches == []
    assert st.resets == 8 and st.actions == 24


@pytest.mark.slow
def test_reset_fuzz_long() -> None:
    out = fuzz_all(rounds=12, actions=8, seed=1)
    assert out["crashes"] == [] and out["mismatches"] == []
