"""Training benchmarks (make bench): metaloop RL-step overhead, zero-variance GRPO groups, and the GPU GRPO step.

    .venv/bin/pytest -m bench --benchmark-enable --benchmark-only tests/benchmarks/test_bench_training.py

Figures are recorded in docs/performance.md (Training). Nothing here asserts a timing: the benchmarks measure, the
numbers are read from pytest-benchmark's table and ``extra_info``.
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.bench

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("trl")

STEPS = 8  # timed GRPO steps per round


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Tiny model + synthetic QA + a briefly SFT-trained policy (so GRPO groups have mixed outcomes)."""
    from dppo_embodied.media import MediaLoader
    from dppo_embodied.rendering import prompt_text
    from inference.models import load_vlm
    from inference.tiny_vlm import build_tiny_vlm
    from tests.training.synthetic import generate
    from training.algorithm.sample_io import oracle_target
    from training.phases.sft import run_sft

    torch.set_num_threads(2)
    tmp = tmp_path_factory.mktemp("bench_training")
    samples = generate(n=192, seed=0, out_dir=str(tmp / "img"))
    corpus = [prompt_text(s) for s in samples] + [oracle_target(s) for s in samples]
    path = build_tiny_vlm(tmp / "model", size="tiny", seed=0, corpus=corpus, max_pixels=64 * 64)
    model, processor = load_vlm(path)
    loader = MediaLoader()
    run_sft(model, processor, [(s, oracle_target(s)) for s in samples[:160]], out_dir=tmp / "sft", max_steps=40,
            learning_rate=3e-3, batch_size=16, loader=loader)
    model.save_pretrained(tmp / "warm")
    processor.save_pretrained(tmp / "warm")
    return {"tmp": tmp, "samples": samples, "path": tmp / "warm", "loader": loader}


def _grpo_cfg(**kw: Any) -> Any:
    from training.algorithm.stagnation_config import StagnationSettings
    from training.phases.grpo_config import GRPOSettings

    return GRPOSettings(max_steps=STEPS, learning_rate=1e-5, num_generations=8, prompts_per_step=4,
                        max_completion_length=8, stagnation=StagnationSettings(window=2, min_windows=10), **kw)


def _step_times(trainer: Any) -> list[float]:
    return [h["step_time"] for h in trainer.state.log_history if "step_time" in h]


def test_bench_plain_trl_grpo_step(benchmark: Any, setup: dict[str, Any]) -> None:
    """Baseline: a plain GRPOTrainer with one reward calling score_sample, same model, data and batch."""
    from datasets import Dataset
    from trl import GRPOTrainer

    from dppo_embodied.metrics import score_sample
    from inference.models import load_vlm
    from training.algorithm.rewards import completion_text
    from training.phases.common import quiet
    from training.phases.grpo import grpo_args, grpo_rows

    index = {s.id: s for s in setup["samples"]}
    rows = grpo_rows(setup["samples"][:64], setup["loader"])

    def task(completions: list[Any], sample_id: list[str], **kw: Any) -> list[float]:
        return [score_sample(index[i], completion_text(c)).value for c, i in zip(completions, sample_id, strict=True)]

    steps: list[float] = []

    def make() -> tuple[tuple[Any, ...], dict[str, Any]]:
        model, processor = load_vlm(setup["path"])
        args = grpo_args(_grpo_cfg(), setup["tmp"] / "plain", [], 0, STEPS)
        args.reward_weights = None
        trainer = quiet(GRPOTrainer(model=model, reward_funcs=[task], args=args, train_dataset=Dataset.from_list(rows),
                                    processing_class=processor))
        return (trainer,), {}

    def run(trainer: Any) -> None:
        trainer.train()
        steps.extend(_step_times(trainer)[1:])

    benchmark.pedantic(run, setup=make, rounds=5, iterations=1)
    benchmark.extra_info["median_step_time_s"] = statistics.median(steps)


def test_bench_metaloop_grpo_step(benchmark: Any, setup: dict[str, Any]) -> None:
    """The metaloop's RL phase: format + task rewards (score_sample), recorder, stagnation, NaN and budget guards."""
    from inference.models import load_vlm
    from training.phases.grpo import build_grpo_trainer

    samples = setup["samples"][:64]
    steps: list[float] = []

    def make() -> tuple[tuple[Any, ...], dict[str, Any]]:
        model, processor = load_vlm(setup["path"])
        trainer, _, _ = build_grpo_trainer(model, processor, samples, _grpo_cfg(), {s.id: 0.5 for s in samples},
                                           out_dir=setup["tmp"] / "metaloop", loader=setup["loader"])
        return (trainer,), {}

    def run(trainer: Any) -> None:
        trainer.train()
        steps.extend(_step_times(trainer)[1:])

    benchmark.pedantic(run, setup=make, rounds=5, iterations=1)
    benchmark.extra_info["median_step_time_s"] = statistics.median(steps)


def test_bench_zero_variance_groups(benchmark: Any, setup: dict[str, Any]) -> None:
    """Share of GRPO groups with zero reward variance: difficulty-aware buffer against a random one (same size)."""
    from inference.models import load_vlm
    from inference.policy import VLMPolicy
    from training.algorithm.difficulty import QARoller, build_buffer, estimate_success_rates
    from training.algorithm.difficulty_config import DifficultySettings
    from training.algorithm.rollout_engine import RolloutEngine
    from training.phases.grpo import run_grpo, zero_std_fraction

    cands = setup["samples"][64:]
    out: dict[str, Any] = {}

    def measure() -> None:
        torch.manual_seed(0)
        model, processor = load_vlm(setup["path"])
        engine = RolloutEngine.in_process(VLMPolicy(model, processor, batch_size=64), batch_size=64)
        table = estimate_success_rates(cands, QARoller(engine, setup["loader"], max_new_tokens=8), rollouts=8,
                                       temperature=1.0, progress=False)
        cfg = DifficultySettings(buffer_size=48, max_task_share=0.5, max_capability_share=0.5)
        by_id = {s.id: s for s in cands}
        for sampling in ("difficulty", "random"):
            buf = build_buffer(cands, table, cfg, sampling=sampling, seed=0)
            m, p = load_vlm(setup["path"])
            # task reward only: a group has zero variance exactly when all its completions succeed or all fail
            res = run_grpo(m, p, [by_id[i] for i in buf.rl], _grpo_cfg(lambda_format=0.0),
                           {i: table[i].sr for i in buf.rl},
                           out_dir=Path(setup["tmp"]) / f"zv-{sampling}", loader=setup["loader"],
                           max_steps=3 * STEPS)
            out[sampling] = zero_std_fraction(res.log_history)
            out[f"{sampling}_buffer"] = len(buf.rl)
        out["mean_sr_candidates"] = sum(r.sr for r in table.values()) / len(table)

    benchmark.pedantic(measure, rounds=1, iterations=1)
    benchmark.extra_info.update(out)
    if out["random"]:
        benchmark.extra_info["ratio_difficulty_over_random"] = out["difficulty"] / out["random"]


@pytest.mark.gpu
def test_bench_gpu_grpo_step_7b(benchmark: Any) -> None:
    """A GRPO step of a 7B-shaped Qwen2.5-VL with random bf16 weights on one GPU: tokens/s and peak memory."""
    from training.scripts.gpu_bench import run_gpu_grpo_bench

    res: dict[str, Any] = {}
    benchmark.pedantic(lambda: res.update(run_gpu_grpo_bench("7B", steps=3)), rounds=1, iterations=1)
    benchmark.extra_info.update(res)
