"""Performance benchmarks of the simulated world (run:
`.venv/bin/pytest -m bench --benchmark-enable --benchmark-only tests/benchmarks/test_bench_envs.py`).

Targets (issue #3), measured on ONE core (the process is pinned to CPU 0 while a benchmark runs):
tabletop step + render at 96x96 >= 300 steps/s; QA generation of image questions >= 50 samples/s.
A "step" here is one control tick of the scene (20 ms simulated = 5 physics steps, the unit every primitive, the
twin's ``send_action`` and the QA rollouts advance by) followed by an RGB render. The text-env decision step
(parse + a scripted primitive of many ticks + RGB and depth observation) is measured separately.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.bench
pytest.importorskip("mujoco")

IMAGE_TEMPLATES = ["color_of_shape", "shape_of_color", "point_to", "exists", "count_color", "count_shape",
                   "count_all", "distance_cm", "height_cm", "left_of", "in_front_of", "nearest_object", "free_spot",
                   "same_arrangement", "count_two_views", "what_changed"]


@pytest.fixture(autouse=True)
def one_core() -> Iterator[None]:
    """Pin the process to one CPU for the duration of a benchmark."""
    if not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def test_bench_scene_tick_and_render_96(benchmark) -> None:
    from envs.control import SUBSTEPS, Controller
    from envs.scene import TabletopScene
    from envs.spec import sample_scene

    sc = TabletopScene(96)
    sc.load(sample_scene(0, 5))
    ctl = Controller(sc)
    sc.render()  # GL context warm-up
    k = {"i": 0}

    def tick_render() -> np.ndarray:
        k["i"] += 1
        sc.data.mocap_pos[0] = (0.1 * np.sin(k["i"] / 20), 0.05, 0.1)
        ctl.tick()
        return sc.render()

    benchmark.pedantic(tick_render, rounds=400, iterations=1, warmup_rounds=20)
    benchmark.extra_info.update(substeps=SUBSTEPS, image=96, steps_per_s=1.0 / benchmark.stats.stats.mean)
    sc.close()


def test_bench_physics_tick_only(benchmark) -> None:
    from envs.control import Controller
    from envs.scene import TabletopScene
    from envs.spec import sample_scene

    sc = TabletopScene(96)
    sc.load(sample_scene(0, 5))
    ctl = Controller(sc)
    benchmark.pedantic(ctl.tick, rounds=2000, iterations=1, warmup_rounds=20)
    sc.close()


def test_bench_env_text_step(benchmark) -> None:
    """One text decision: parse + a 3 cm relative move (several ticks) + RGB and depth observation."""
    import envs

    env = envs.make("dppo/TabletopPick-v0", image_size=96, horizon=1000, max_invalid=1000)
    env.reset(seed=0)
    moves = ['{"action": {"type": "move", "dx_cm": 3, "dy_cm": 0, "dz_cm": 0}}',
             '{"action": {"type": "move", "dx_cm": -3, "dy_cm": 0, "dz_cm": 0}}']
    k = {"i": 0}

    def step() -> object:
        k["i"] += 1
        return env.step(moves[k["i"] % 2])

    benchmark.pedantic(step, rounds=200, iterations=1, warmup_rounds=5)
    env.close()


def test_bench_env_expert_episode(benchmark) -> None:
    """A whole expert episode of dppo/TabletopPlace-v0 (grasp + place through point actions)."""
    import envs
    from envs.experts import expert_action
    from envs.rollout import run_episode

    env = envs.make("dppo/TabletopPlace-v0", image_size=96)
    seeds = iter(range(10_000))
    benchmark.pedantic(lambda: run_episode(env, lambda o: expert_action(env), seed=next(seeds)), rounds=30,
                       iterations=1, warmup_rounds=2)
    env.close()


def test_bench_qa_image_questions(benchmark, tmp_path: Path) -> None:
    """QA generation of single-moment image questions: 100 samples per round, PNGs written; reported per sample."""
    from envs.qa import generate

    rounds = iter(range(1000))
    n = 100

    def gen() -> list:
        r = next(rounds)
        return generate("tabletop-qa", n, seed=r, templates=IMAGE_TEMPLATES, out_dir=tmp_path / f"r{r}",
                        progress=False)

    benchmark.pedantic(gen, rounds=5, iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(samples_per_round=n, samples_per_s=n / benchmark.stats.stats.mean)


def test_bench_qa_all_templates(benchmark, tmp_path: Path) -> None:
    """QA generation over all 9 capabilities (rollout questions included): 45 samples per round."""
    from envs.qa import generate

    rounds = iter(range(1000))
    n = 45

    def gen() -> list:
        r = next(rounds)
        return generate("tabletop-qa", n, seed=r, out_dir=tmp_path / f"r{r}", progress=False)

    benchmark.pedantic(gen, rounds=3, iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(samples_per_round=n, samples_per_s=n / benchmark.stats.stats.mean)
