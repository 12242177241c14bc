"""10,000 fuzzed model outputs through parse → motion plan → safety: no exception, no command outside the limits."""

from __future__ import annotations

import json
import math
import random
import time

import numpy as np

from dppo_embodied.actions import parse_action
from dppo_embodied.parsing import NoAnswer
from robot_bridge.executor import Executor
from robot_bridge.pose import EEPose
from robot_bridge.safety import Safety, SafetyConfig
from robot_bridge.skills import SkillLibrary
from robot_bridge.targets import MotionConfig, MotionPlanner
from tests.bridge.fakes import HOME, WORKSPACE, FakeRobot

N = 10_000
NUMBERS = [0, 1, -1, 0.5, 1e9, -1e9, 1e308, -1e-308, 2.5, 999, 1000, 1001, 0.999999, "nan", "inf", "-inf", "1e400",
           "0x10", "", None, True, [], {}, "12cm", 3.5e-5, -0.0]
TYPES = ["point", "move", "skill", "done", "POINT", "jump", "", None, 7, "skill "]
THEN = ["move_to", "grasp", "place", "push", "Move To", "throw", None, 3, ""]
WORDS = ["pick", "place", "push", "home", "open", "close", "lift", "dance", "", None, "PICK"]
GARBAGE = ['{"action": ', "}}}}", "[[[[", "<think>", "</think>", "<answer>", '{"actions": []}', "DONE",
           "done.", '<point x="50" y="50">', '{"point": [500, 250]}', "\\boxed{", "```json", "null", "💥", "\x00",
           "' or 1=1 --",
           "__import__('os').system('rm -rf /')", "{'action': {'type': 'move', 'dx_cm': 1e999}}"]


def fuzz_text(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.55:  # structured envelope with hostile values
        body: dict[str, object] = {"type": rng.choice(TYPES)}
        for k in rng.sample(["x", "y", "then", "dx_cm", "dy_cm", "dz_cm", "gripper", "name", "object", "target",
                             "point", "dx"], rng.randint(0, 6)):
            if k == "then":
                body[k] = rng.choice(THEN)
            elif k in ("name", "object", "target"):
                body[k] = rng.choice(WORDS)
            elif k == "gripper":
                body[k] = rng.choice(["open", "close", 1, -1, 0.7, None, "maybe", True])
            elif k == "point":
                body[k] = [rng.choice(NUMBERS), rng.choice(NUMBERS)]
            else:
                body[k] = rng.choice(NUMBERS) if rng.random() < 0.5 else rng.uniform(-5, 5)
        env: object = {"action": body} if rng.random() < 0.8 else [body, body]
        text = json.dumps(env, default=str)
        if rng.random() < 0.2:
            text = text[: rng.randint(0, len(text))]  # truncated
        if rng.random() < 0.3:
            text = f"<think>{rng.choice(GARBAGE)}</think> " + text
        return text
    if kind < 0.8:  # garbage soup
        return "".join(rng.choice(GARBAGE) for _ in range(rng.randint(1, 8)))
    if kind < 0.95:  # random characters
        return "".join(chr(rng.randint(0, 0x2FFF)) for _ in range(rng.randint(0, 200)))
    return "x" * rng.randint(20_000, 60_000) + '{"action": {"type": "move", "dz_cm": -1e6}}'


def test_fuzzed_outputs_never_escape_the_limits() -> None:
    rng = random.Random(1234)
    robot = FakeRobot()
    safety = Safety(SafetyConfig(max_speed_m_s=0.3), control_hz=30.0, workspace=WORKSPACE)
    lo, hi = (np.asarray(w) for w in WORKSPACE)
    objects = {"red_block": (0.05, 0.05, 0.04), "target": (-0.1, 0.1, 0.0)}
    motion = MotionPlanner(MotionConfig(home=HOME), robot.cal, speed_m_s=0.3,
                           skills=SkillLibrary(locator=objects.get, home=HOME))
    skills = motion.skills.names  # type: ignore[union-attr]
    depth = robot.depth()
    counts = {"invalid": 0, "valid": 0, "refused": 0, "commands": 0}
    for i in range(N):
        text = fuzz_text(rng)
        action = parse_action(text, image_size=(64, 64), skills=skills)
        if isinstance(action, NoAnswer):
            assert isinstance(action.reason, str) and action.reason
            counts["invalid"] += 1
            continue
        counts["valid"] += 1
        state = EEPose(*(rng.uniform(a, b) for a, b in zip(lo, hi, strict=True)), rng.choice([0.0, 1.0]))
        plan = motion.plan(action, state, t_obs=0.0, decision=i, depth=depth, holding=rng.choice([True, False, None]))
        if isinstance(plan, NoAnswer):
            counts["refused"] += 1
            continue
        cur = state
        for w in plan:
            for _ in range(3):  # a few control ticks toward each waypoint
                cmd = safety.safe_ee(w.pose, cur, w.speed_m_s)
                assert cmd.is_finite(), (text, w)
                assert np.all(cmd.xyz >= lo - 1e-9) and np.all(cmd.xyz <= hi + 1e-9), (text, cmd)
                assert cmd.distance(cur) <= safety.step_m + 1e-9, (text, cmd, cur)
                assert 0.0 <= cmd.gripper <= 1.0 and abs(cmd.gripper - cur.gripper) <= safety.gripper_step + 1e-9
                counts["commands"] += 1
                cur = cmd
    assert counts["invalid"] + counts["valid"] == N
    assert counts["valid"] > 1000 and counts["invalid"] > 1000 and counts["commands"] > 5000, counts


def test_fuzzed_outputs_through_the_executor() -> None:
    """A sample runs on the fake robot through the real executor: every command sent stays inside the limits."""
    rng = random.Random(99)
    robot = FakeRobot()
    safety = Safety(SafetyConfig(max_speed_m_s=0.3), control_hz=30.0, workspace=WORKSPACE)
    safety.watchdog.feed(until=time.monotonic() + 3600)
    ex = Executor(robot, safety)
    motion = MotionPlanner(MotionConfig(home=HOME), robot.cal, ttl_s=5.0, speed_m_s=0.3)
    lo, hi = (np.asarray(w) for w in WORKSPACE)
    sent = 0
    for _ in range(300):
        action = parse_action(fuzz_text(rng), image_size=(64, 64))
        if isinstance(action, NoAnswer):
            continue
        plan = motion.plan(action, ex.state_fn(), time.monotonic(), depth=robot.depth())
        if isinstance(plan, NoAnswer):
            continue
        ex.submit(plan)
        for _ in range(10):
            before = robot.pose.copy()
            ex.step()
            after = robot.pose
            assert np.all(after[:3] >= lo - 1e-9) and np.all(after[:3] <= hi + 1e-9)
            assert float(np.linalg.norm(after[:3] - before[:3])) <= safety.step_m + 1e-9
            assert all(math.isfinite(v) for v in after)
            sent += 1
    assert sent > 100
