"""Teacher-call accounting and the simulated imperfect teacher (verification catches its wrong answers)."""

from __future__ import annotations

import random

import pytest

from dppo_embodied.types import AnswerType, EmbodiedSample, format_answer
from training.algorithm.rewards import success_of
from training.algorithm.teacher import OracleTeacher, SimulatedTeacher, wrong_answer
from training.algorithm.teacher_budget import TeacherLedger


def _samples(n: int = 10) -> list[EmbodiedSample]:
    out = []
    for i in range(n):
        out.append(EmbodiedSample(f"q{i}", "t", "Is it red?", "yes" if i % 2 else "no", AnswerType.YES_NO,
                                  capabilities=["perception_grounding" if i < 5 else "spatial_geometric"],
                                  reasoning="Look."))
    return out


class CountingTeacher(OracleTeacher):
    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    def fill(self, samples):  # type: ignore[no-untyped-def]
        self.asked += [s.id for s in samples]
        return super().fill(samples)


def test_ledger_counts_caches_and_refuses_beyond_the_budget() -> None:
    t = CountingTeacher()
    ledger = TeacherLedger(budget=6)
    s = _samples(10)
    outs = ledger.fill(t, s[:4])
    assert ledger.spent == 4 and all(o.target for o in outs)
    outs = ledger.fill(t, s[2:8])  # q2, q3 cached (free); q4..q7 new, only two affordable
    assert t.asked == ["q0", "q1", "q2", "q3", "q4", "q5"] and ledger.spent == 6 and ledger.refused == 2
    assert [o.target is not None for o in outs] == [True, True, True, True, False, False]
    assert ledger.remaining == 0 and ledger.fill(t, s[8:]) and ledger.spent == 6
    assert ledger.refused == 4 and ledger.charge(3) == 0 and ledger.refused == 7
    again = TeacherLedger.from_json(ledger.to_json())
    assert again.spent == 6 and again.verified() == ledger.verified()
    unlimited = TeacherLedger()
    unlimited.fill(t, s, votes=3)
    assert unlimited.spent == 30 and unlimited.charge(5) == 5  # k-vote costs k calls per sample


@pytest.mark.parametrize("answer_type,answer,options", [
    (AnswerType.MCQ, "B", ["red", "green", "blue"]), (AnswerType.YES_NO, "yes", []), (AnswerType.COUNT, 0, []),
    (AnswerType.COUNT, 3, []), (AnswerType.NUMBER, 12.0, []),
    (AnswerType.SEQUENCE, ["pick a", "place a on b", "pick c"], []),
])
def test_wrong_answers_never_verify(answer_type: AnswerType, answer: object, options: list[str]) -> None:
    s = EmbodiedSample("x", "t", "q?", answer, answer_type, options=options)
    for seed in range(20):
        bad = wrong_answer(s, random.Random(seed))
        assert bad != format_answer(s)
        assert not success_of(s, f"<answer>{bad}</answer>")[1]


def test_simulated_teacher_accuracy_per_capability_and_verification() -> None:
    many = [EmbodiedSample(f"p{i}", "t", "Is it red?", "yes", AnswerType.YES_NO, capabilities=[cap], reasoning="r")
            for i in range(400) for cap in (["perception_grounding"] if i < 200 else ["spatial_geometric"])]
    t = SimulatedTeacher(accuracy=0.9, capability_accuracy={"perception_grounding": 0.3}, with_reasoning=True, seed=1)
    outs = t.fill(many)
    pg = sum(o.verified for o in outs[:200]) / 200
    sg = sum(o.verified for o in outs[200:]) / 200
    assert 0.2 < pg < 0.4 and 0.83 < sg < 0.97
    kept = [o for o in outs if o.verified]
    assert all(o.target.startswith("<think>r</think><answer>yes</answer>") for o in kept)
    assert [o.target for o in t.fill(many[:50])] == [o.target for o in outs[:50]]  # deterministic draws
    voting = SimulatedTeacher(accuracy=0.6, k_vote=5, seed=2).fill(many[200:])
    assert all(o.votes == 5 for o in voting)


def test_dppo_sends_the_hardest_failures_of_every_task_to_the_teacher() -> None:
    from training.algorithm.sft_sources import select_failures

    fails = [EmbodiedSample(f"{t}{i}", "t", "q", "yes", AnswerType.YES_NO, metadata={"template": t})
             for t in ("a", "b") for i in range(6)]
    sr = {s.id: (0.0 if s.id in ("a3", "b5") else 0.25) for s in fails}
    picked = [s.id for s in select_failures(fails, sr, 4, seed=0)]
    assert len(picked) == 4 and picked[:2] == ["a3", "b5"]  # SR 0 first, one task after the other
    assert sum(p.startswith("a") for p in picked) == 2
    assert len(select_failures(fails, sr, 0)) == 12 and len(select_failures(fails, sr, 50)) == 12
