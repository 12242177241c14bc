"""Difficulty estimation and the RL buffer rules: trivial dropped, intractable routed, caps respected, random."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest

from dppo_embodied.errors import ConfigError
from dppo_embodied.types import AnswerType, EmbodiedSample
from training.algorithm.difficulty import (
    SRRecord,
    build_buffer,
    estimate_success_rates,
    table_from_json,
    table_to_json,
)
from training.algorithm.difficulty_config import DifficultySettings


def _sample(i: int, task: str, cap: str) -> EmbodiedSample:
    return EmbodiedSample(f"s{i}", "t", "q", "yes", AnswerType.YES_NO, capabilities=[cap], metadata={"template": task})


def _table(srs: dict[str, tuple[float, str, str]]) -> dict[str, SRRecord]:
    return {i: SRRecord(sr=sr, n=4, mean_reward=sr, task=t, capability=c) for i, (sr, t, c) in srs.items()}


def test_trivial_dropped_intractable_routed_informative_first() -> None:
    caps = ["spatial_geometric", "perception_grounding", "quantitative_numerical"]
    samples = [_sample(i, f"t{i % 3}", caps[i % 3]) for i in range(12)]
    srs = [1.0, 0.0, 0.5, 0.25, 0.75, 1.0, 0.0, 0.5, 0.25, 0.75, 0.5, 0.5]
    table = _table({s.id: (sr, s.metadata["template"], s.capabilities[0])
                    for s, sr in zip(samples, srs, strict=True)})
    buf = build_buffer(samples, table, DifficultySettings(max_task_share=1.0, max_capability_share=1.0))
    assert set(buf.trivial) == {"s0", "s5"}
    assert set(buf.weak) == {"s1", "s6"}
    assert set(buf.rl) == {s.id for s, sr in zip(samples, srs, strict=False) if 0 < sr < 1}
    assert not set(buf.rl) & (set(buf.trivial) | set(buf.weak))
    # SR closest to 1/2 first (the largest GRPO reward variance)
    assert all(table[i].sr == 0.5 for i in buf.rl[:4])
    # a lower intractable threshold is respected
    buf2 = build_buffer(samples, table, DifficultySettings(intractable_sr=0.25, max_task_share=1.0,
                                                           max_capability_share=1.0))
    assert {"s3", "s8"} <= set(buf2.weak) and not {"s3", "s8"} & set(buf2.rl)


@pytest.mark.parametrize("task_share,cap_share", [(0.35, 1.0), (1.0, 0.35), (0.4, 0.4), (0.2, 0.5)])
def test_caps_respected(task_share: float, cap_share: float) -> None:
    caps = ["spatial_geometric", "perception_grounding", "quantitative_numerical", "temporal_sequential"]
    # task 0 dominates the candidates: 40 of 70
    samples = [_sample(i, "t0" if i < 40 else f"t{1 + i % 3}", caps[0] if i < 40 else caps[1 + i % 3])
               for i in range(70)]
    table = _table({s.id: (0.5, s.metadata["template"], s.capabilities[0]) for s in samples})
    cfg = DifficultySettings(max_task_share=task_share, max_capability_share=cap_share, buffer_size=50)
    buf = build_buffer(samples, table, cfg)
    assert 0 < len(buf.rl) <= 50
    n = len(buf.rl)
    for key, share in (("task", task_share), ("capability", cap_share)):
        eff = buf.caps[key]
        assert eff >= share
        counts = Counter(getattr(table[i], key) for i in buf.rl)
        assert max(counts.values()) <= max(1, int(eff * n + 1e-9)), (key, counts, n)
    assert set(buf.capped) == {s.id for s in samples} - set(buf.rl)


def test_infeasible_cap_is_raised_to_one_over_groups() -> None:
    samples = [_sample(i, f"t{i % 2}", "spatial_geometric") for i in range(10)]
    table = _table({s.id: (0.5, s.metadata["template"], "spatial_geometric") for s in samples})
    buf = build_buffer(samples, table, DifficultySettings(max_task_share=0.3, max_capability_share=0.3))
    assert buf.caps == {"task": 0.5, "capability": 1.0}
    assert Counter(table[i].task for i in buf.rl) == {"t0": 5, "t1": 5}


def test_answer_type_cap_keeps_yes_no_prompts_from_filling_the_buffer() -> None:
    # 30 yes/no candidates at SR 1/2 come first; 20 multiple-choice ones at SR 1/4 after them
    samples = [_sample(i, f"t{i % 3}", "spatial_geometric") for i in range(50)]
    table = {s.id: SRRecord(sr=0.5 if i < 30 else 0.25, n=4, mean_reward=0.5, task=f"t{i % 3}",
                            capability="spatial_geometric", answer_type="yes_no" if i < 30 else "mcq")
             for i, s in enumerate(samples)}
    cfg = DifficultySettings(max_task_share=1.0, max_capability_share=1.0, buffer_size=20)
    assert Counter(table[i].answer_type for i in build_buffer(samples, table, cfg).rl) == {"yes_no": 20}
    capped = build_buffer(samples, table, replace(cfg, max_answer_type_share=0.5))
    assert Counter(table[i].answer_type for i in capped.rl) == {"yes_no": 10, "mcq": 10}
    assert capped.caps["answer_type"] == 0.5 and {table[i].answer_type for i in capped.rl[:10]} == {"yes_no"}
    with pytest.raises(ConfigError, match="max_answer_type_share"):
        DifficultySettings(max_answer_type_share=0.0)


def test_balance_yes_no_gives_each_yes_no_template_both_answers_equally() -> None:
    # template t0: 12 gold-"yes" and 4 gold-"no" candidates; t1 (multiple choice) passes unchanged
    samples = [EmbodiedSample(f"s{i}", "t", "q", "yes" if i < 12 else "no", AnswerType.YES_NO,
                              capabilities=["spatial_geometric"], metadata={"template": "t0"}) for i in range(16)]
    samples += [EmbodiedSample(f"m{i}", "t", "q", "A", AnswerType.MCQ, options=["a", "b"],
                               capabilities=["spatial_geometric"], metadata={"template": "t1"}) for i in range(6)]
    table = _table({s.id: (0.5, s.metadata["template"], "spatial_geometric") for s in samples})
    cfg = DifficultySettings(max_task_share=1.0, max_capability_share=1.0)
    assert len(build_buffer(samples, table, cfg).rl) == 22
    answers = Counter(str(s.answer) for s in samples if s.id in set(build_buffer(
        samples, table, replace(cfg, balance_yes_no=True)).rl))
    assert answers == {"yes": 4, "no": 4, "A": 6}
    # the caps take a prefix of each task's candidates: that prefix holds both answers equally
    capped = build_buffer(samples, table, replace(cfg, balance_yes_no=True, max_task_share=0.5, buffer_size=12))
    assert Counter(str(s.answer) for s in samples if s.id in set(capped.rl)) == {"yes": 3, "no": 3, "A": 6}
    unbalanced = build_buffer(samples, table, replace(cfg, max_task_share=0.5, buffer_size=12))
    assert Counter(str(s.answer) for s in samples if s.id in set(unbalanced.rl))["yes"] > 3


def test_random_sampling_same_size_ignores_sr() -> None:
    samples = [_sample(i, f"t{i % 4}", "spatial_geometric") for i in range(40)]
    table = _table({s.id: ([0.0, 1.0, 0.5, 0.25][i % 4], s.metadata["template"], "spatial_geometric")
                    for i, s in enumerate(samples)})
    cfg = DifficultySettings(max_task_share=1.0, max_capability_share=1.0)
    diff = build_buffer(samples, table, cfg, sampling="difficulty", seed=3)
    rnd = build_buffer(samples, table, cfg, sampling="random", seed=3)
    assert len(rnd.rl) == len(diff.rl) == 20
    assert any(table[i].sr in (0.0, 1.0) for i in rnd.rl)  # random draws ignore SR
    assert all(0 < table[i].sr < 1 for i in diff.rl)
    assert build_buffer(samples, table, cfg, sampling="random", seed=3).rl == rnd.rl  # deterministic
    with pytest.raises(ValueError, match="sampling"):
        build_buffer(samples, table, cfg, sampling="greedy")


def test_estimate_success_rates_with_a_roller(samples: list) -> None:
    calls = []

    def roller(batch, n, temperature):
        calls.append((len(batch), n, temperature))
        return [[(1.0, True)] * (i % (n + 1)) + [(0.0, False)] * (n - i % (n + 1)) for i, _ in enumerate(batch)]

    table = estimate_success_rates(samples, roller, rollouts=4, temperature=1.0, chunk=5, progress=False)
    assert set(table) == {s.id for s in samples}
    assert [c[0] for c in calls] == [5, 5, 2] and all(c[1:] == (4, 1.0) for c in calls)
    assert all(r.n == 4 and 0 <= r.sr <= 1 and r.difficulty == 1 - r.sr for r in table.values())
    assert {r.answer_type for r in table.values()} == {s.answer_type.value for s in samples}
    assert table_from_json(table_to_json(table)) == table


def test_qa_roller_scores_with_the_metric(samples: list, tmp_path) -> None:
    from benchmarks.backends.fake import FakeBackend
    from dppo_embodied.media import MediaLoader
    from training.algorithm.difficulty import QARoller
    from training.algorithm.rollout_config import RolloutSettings
    from training.algorithm.rollout_engine import RolloutEngine

    # the engine answers the right letter / count / yes-no of the first sample to every request
    engine = RolloutEngine(RolloutSettings(), tmp_path,
                           backend=FakeBackend(responder=lambda req: f"<answer>{samples[0].answer}</answer>"))
    out = QARoller(engine, MediaLoader())(samples[:2], 3, 1.0)
    assert out[0] == [(1.0, True)] * 3
    assert all(not ok for _, ok in out[1])


def test_the_first_successful_text_is_kept_when_the_roller_keeps_texts(samples: list) -> None:
    class Roller:
        def __init__(self) -> None:
            self.last_texts: dict[str, list[str]] = {}

        def __call__(self, batch, n, temperature):
            self.last_texts.update({s.id: [f"{s.id}-{r}" for r in range(n)] for s in batch})
            return [[(0.0, False), (1.0, True), (1.0, True)] if i % 2 else [(0.0, False)] * n
                    for i, _ in enumerate(batch)]

    table = estimate_success_rates(samples[:4], Roller(), rollouts=3, temperature=1.0, progress=False)
    assert [table[s.id].success_text for s in samples[:4]] == ["", f"{samples[1].id}-1", "", f"{samples[3].id}-1"]
    plain = estimate_success_rates(samples[:2], lambda b, n, t: [[(1.0, True)] * n for _ in b], rollouts=2,
                                   temperature=1.0, progress=False)  # a roller without texts: nothing kept
    assert all(r.success_text == "" for r in plain.values())


def test_diagnosis_keeps_the_verified_rollouts_of_solved_samples() -> None:
    from training.algorithm.diagnosis import Diagnosis, summarize

    samples = [_sample(i, "t", "spatial_geometric") for i in range(3)]
    table = {"s0": SRRecord(0.0, 4, 0.0, "t", "spatial_geometric"),
             "s1": SRRecord(0.25, 4, 0.25, "t", "spatial_geometric", success_text="<answer>yes</answer>"),
             "s2": SRRecord(1.0, 4, 1.0, "t", "spatial_geometric", success_text="<answer>no</answer>")}
    d = summarize(samples, table, failure_sr=0.5)
    assert d.failures == ["s0", "s1"] and d.verified == {"s1": "<answer>yes</answer>", "s2": "<answer>no</answer>"}
    assert Diagnosis.from_json(d.to_json()) == d
    assert Diagnosis.from_json({k: v for k, v in d.to_json().items() if k != "verified"}).verified == {}
