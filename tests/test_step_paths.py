"""One closed-loop step contract: the same seeded state through the three paths gives the same messages.

The paths: a training rollout (``EpisodeRoller``, what GRPO rows and rewards are built from), the closed-loop
benchmark actor (``dppo eval``'s ``tabletop_closed_loop`` through a backend) and the bridge planner (``dppo bridge``
on the sim twin with its own camera, over loopback HTTP). Each sees the reset state, answers ``hello`` (invalid:
no physics anywhere), sees the feedback and history of that, and answers ``done``. Their conversations must have
the same signature (roles, text, image positions and sizes; pixels aside: the twin renders its own frame).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mujoco")

import envs
from benchmarks.backends.fake import FakeBackend
from benchmarks.runner import RunSettings, run
from benchmarks.task import TaskManager
from dppo_embodied.conversation import Conversation
from dppo_embodied.generation import ChatRequest
from dppo_embodied.prompts import COMPACT_SYSTEM_PROMPT
from robot_bridge.planner import PlannerConfig
from robot_bridge.session import Bridge, BridgeConfig
from tests.helpers.fake_openai_server import FakeOpenAIServer
from training.algorithm.env_rollouts import EnvPool, EpisodeRoller, episode_samples
from training.algorithm.rollout_engine import RolloutEngine

pytestmark = [pytest.mark.mujoco, pytest.mark.network]

ENV = "dppo/TabletopPick-v0"
SEED = 1000  # the first seed of the tabletop_closed_loop suite
DONE = json.dumps({"action": {"type": "done"}})


def replies(n_before: int) -> str:
    """``hello`` for the first decision of an episode, ``done`` after."""
    return "hello" if n_before == 0 else DONE


def training_path(style: str) -> list[Conversation]:
    seen: list[Conversation] = []

    class Recorder:
        model = None

        def generate(self, convs: list[Conversation], max_new_tokens: int | None = None,
                     temperature: float = 0.0, **kw: Any) -> list[str]:
            out = [replies(len(seen)) for _ in convs]
            seen.extend(convs)
            return out

    sample = episode_samples([ENV], 1, seed=0)[0]
    sample = dataclasses.replace(sample, metadata={**sample.metadata, "seed": SEED})
    engine = RolloutEngine.in_process(Recorder())  # the local rollout engine over the recording policy
    [[(_, ok)]] = EpisodeRoller(engine, max_steps=3, pool=EnvPool(), style=style)([sample], 1, 0.0)
    assert not ok
    return seen


def benchmark_path(style: str, out: Path) -> list[Conversation]:
    seen: list[Conversation] = []

    def respond(r: ChatRequest) -> str:
        seen.append(r.conversation)
        return replies(len(seen) - 1)

    res = run(TaskManager().resolve("tabletop_closed_loop_pick"), FakeBackend(responder=respond),
              RunSettings(out=out, progress=False, limit=1, step_prompt=style))
    assert res["tabletop_closed_loop"]["n"] == 1
    return seen


def bridge_path(style: str) -> list[Conversation]:
    env = envs.make(ENV)
    env.reset(seed=SEED)
    inner: Any = env.unwrapped
    scene_seed, task, skills, n_objects = inner.scene_seed, inner.task.to_text(), list(inner.skills), inner.n_objects
    env.close()
    calls: list[int] = []

    def respond(_request: dict[str, Any]) -> str:
        calls.append(1)
        return replies(len(calls) - 1)

    with FakeOpenAIServer(responder=respond) as srv:
        cfg = BridgeConfig(robot="sim", robot_args={"seed": scene_seed, "image_size": inner.image_size,
                                                    "n_objects": list(n_objects)},
                           server=srv.url, model="fake-model", task=task, skills=skills, step_prompt=style,
                           planner=PlannerConfig(rate_hz=10.0, max_steps=3))
        with Bridge(cfg) as b:
            result = b.run_episode()
    assert [d.status for d in result.decisions] == ["invalid", "done"]
    return [d.conversation for d in result.decisions if d.conversation is not None]


@pytest.mark.parametrize("style", ["full", "compact"])
def test_one_state_three_paths_same_messages(style: str, tmp_path: Path) -> None:
    paths = {"training": training_path(style), "benchmark": benchmark_path(style, tmp_path / "eval"),
             "bridge": bridge_path(style)}
    first = paths["training"]
    assert len(first) == 2
    assert "Task: Pick up the " in first[0].text and "Feedback: none yet." in first[0].text
    assert "- hello -> Last action is invalid: " in first[1].text  # the history line of the invalid reply
    assert first[0].signature()[-1]["content"][-1] == {"type": "image", "image": "96x96x3"}  # the image last
    assert (first[0].system == COMPACT_SYSTEM_PROMPT) == (style == "compact")
    for name, convs in paths.items():
        assert [c.signature() for c in convs] == [c.signature() for c in first], name
