"""Rewards call dppo_embodied.metrics.score_sample (one definition of success) and the recorder captures ids."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from dppo_embodied.metrics import score_sample
from training.algorithm import rewards
from training.algorithm.rewards import (
    FormatReward,
    RewardRecorder,
    SampleIndex,
    TaskReward,
    completion_text,
    qa_rewards,
)


def _c(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def test_task_and_format_rewards_equal_score_sample(samples: list) -> None:
    index = SampleIndex(samples)
    texts = ["<answer>A</answer>", "<answer>2</answer>", "yes", "<think>hm</think><answer>no</answer>",
             "<answer></answer>", "", "<answer>B</answer> trailing", "<answer>3</answer>"]
    ids = [samples[i % len(samples)].id for i in range(len(texts))]
    task = TaskReward(index)(completions=[_c(t) for t in texts], sample_id=ids)
    fmt = FormatReward(index)(completions=[_c(t) for t in texts], sample_id=ids)
    for t, sid, r, f in zip(texts, ids, task, fmt, strict=False):
        s = score_sample(index[sid], t)
        assert r == s.value
        assert f == float(s.format_ok)
    assert fmt[0] == 1.0 and fmt[2] == 0.0 and fmt[4] == 0.0  # bare text and empty answers get no format reward


def test_rewards_go_through_score_sample(samples: list, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake(sample, response, count_metric=None):
        calls.append((sample.id, response))
        return score_sample(sample, response)

    monkeypatch.setattr(rewards, "score_sample", fake)
    funcs, weights = qa_rewards(SampleIndex(samples), None, 0.1, 1.0)
    assert weights == [0.1, 1.0] and [f.__name__ for f in funcs] == ["format", "task"]
    comps = [_c("<answer>A</answer>"), _c("<answer>no</answer>")]
    ids = [samples[0].id, samples[2].id]
    for f in funcs:
        f(completions=comps, sample_id=ids)
    # both functions share one cache: each completion is scored once
    assert sorted(calls) == sorted([(ids[0], "<answer>A</answer>"), (ids[1], "<answer>no</answer>")])


def test_recorder_captures_step_and_sample_ids(samples: list, tmp_path: Path) -> None:
    rec = RewardRecorder(tmp_path, rank=1)
    task = TaskReward(SampleIndex(samples), rec)
    gt = next(s for s in samples if s.metadata["template"] == "left_of")
    comps = [_c(f"<answer>{gt.answer}</answer>"), _c("<answer>maybe</answer>")]
    task(completions=comps, sample_id=[gt.id, gt.id], trainer_state=SimpleNamespace(global_step=7))
    assert [(r.step, r.sample_id, r.reward, r.success, r.rank) for r in rec.records] == [
        (7, gt.id, 1.0, True, 1), (7, gt.id, 0.0, False, 1)]
    lines = [json.loads(x) for x in (tmp_path / "rewards.rank1.jsonl").read_text().splitlines()]
    assert [d["sample_id"] for d in lines] == [gt.id, gt.id] and lines[0]["step"] == 7
    assert len(rec.since(7)) == 2 and rec.since(8) == []


def test_episode_and_unknown_samples_get_none(samples: list) -> None:
    from dppo_embodied.types import AnswerType, EmbodiedSample

    ep = EmbodiedSample("ep/1", "dppo/TabletopPick-v0", "pick", {"action": {"type": "done"}}, AnswerType.ACTION,
                        metadata={"env_id": "dppo/TabletopPick-v0", "seed": 1})
    index = SampleIndex([*samples, ep])
    assert TaskReward(index)(completions=[_c("x"), _c("y")], sample_id=["ep/1", "missing"]) == [None, None]


def test_completion_text_forms() -> None:
    assert completion_text("plain") == "plain"
    assert completion_text(_c("conv")) == "conv"
    assert completion_text([{"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text",
                                                                                              "text": "b"}]}]) == "ab"
    assert completion_text(None) == ""


def test_reward_noise_flips_the_learners_rewards_only() -> None:
    from training.algorithm.reward_noise import NoisyReward

    def fn(**_: object) -> list[float | None]:
        return [1.0, 0.0, None, 0.25] * 50

    assert NoisyReward(fn, 0.0)() == fn()
    assert NoisyReward(fn, 1.0)() == [0.0, 1.0, None, 0.75] * 50
    half = NoisyReward(fn, 0.5, seed=3)
    out = half()
    assert out[2::4] == [None] * 50 and 40 <= half.flipped <= 110
    assert sum(a != b for a, b in zip(out, fn(), strict=True)) == half.flipped
    assert NoisyReward(fn, 0.5, seed=3)() == out  # seeded: a rerun flips the same rewards


def test_reward_equals_the_benchmark_score_for_every_answer_type(tmp_path: Path) -> None:
    """The GRPO task reward of a completion is the benchmark score (the tabletop_qa task's scorer on the docs its
    adapter builds) of the same response, for every answer type; the format reward is its format check."""
    import numpy as np
    from PIL import Image

    from benchmarks.runner import load_docs
    from benchmarks.scoring import make_scorer
    from benchmarks.task import TaskManager
    from dppo_embodied.types import AnswerType, write_samples
    from tests.benchmarks.pathological import _samples
    from training.algorithm.sample_io import oracle_target

    mask = np.zeros((48, 64), np.uint8)
    mask[12:36, 16:48] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    samples = _samples(tmp_path / "mask.png")
    assert {s.answer_type for s in samples} == set(AnswerType)
    write_samples(samples, tmp_path / "qa" / "all.jsonl")
    docs = {d.id: d for d in load_docs(TaskManager().get("tabletop_qa"), tmp_path / "qa")}
    value, success = make_scorer("sample_metrics", "tabletop_qa"), make_scorer(
        "sample_metrics", "tabletop_qa", {"score": "success"})
    index = SampleIndex(samples)
    recorder = RewardRecorder()
    task, fmt = TaskReward(index, recorder), FormatReward(index)
    for s in samples:
        responses = [oracle_target(s), "<think>let me see</think>" + oracle_target(s), "I am not sure.", "",
                     "<answer>0</answer><answer>" + oracle_target(s)[8:],  # the first block is the answer
                     "<think>x</think>y</think>" + oracle_target(s), "\\boxed{" + oracle_target(s)[8:-9] + "}"]
        ids = [s.id] * len(responses)
        r_task = task(completions=[_c(t) for t in responses], sample_id=ids)
        r_fmt = fmt(completions=[_c(t) for t in responses], sample_id=ids)
        for text, rt, rf, rec in zip(responses, r_task, r_fmt, recorder.records[-len(responses):], strict=True):
            bench = value.score(docs[s.id], text)
            assert rt == bench.score, (s.id, text)
            assert rf == float(bench.extra["format_ok"]), (s.id, text)
            assert rec.success == bool(success.score(docs[s.id], text).score), (s.id, text)
        assert r_task[0] == 1.0, s.id  # the oracle target earns the full reward
