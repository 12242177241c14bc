"""An imperfect teacher for ablations: the simulator's oracle, right only with a given (per-capability) accuracy.

Real teachers (Qwen3-VL-Plus, InternVL3.5-38B in [TR]) are wrong on part of the failures they are asked to fill,
and DPPO keeps a teacher output only when the rule-based reward verifies it (:func:`training.teacher.vote`). To study
that on the CPU, :class:`SimulatedTeacher` answers each request with the oracle's reasoning and answer with
probability ``accuracy`` (per capability: ``capability_accuracy[primary capability]``, else ``accuracy``), and
otherwise with a plausible wrong answer of the same type: another option letter, the opposite yes/no, a count off by
one, a number 40 % off, a point mirrored through the image centre, the second half of a plan in reverse order.
Draws are deterministic per (seed, sample id, vote), so a resumed run asks the same questions and gets the same
answers.

Verification then rejects the wrong ones: a failure whose teacher answer is wrong gets no SFT target, but the call
is spent (:class:`training.teacher_budget.TeacherLedger` counts it). Presets: perfect (1.0), noisy (0.75),
weak (0.4).
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Sequence

from dppo_embodied.types import AnswerType, EmbodiedSample
from training.sample_io import target_text
from training.teacher import TeacherOutput, vote

#: named teacher qualities (accuracy of the simulated teacher)
QUALITIES: dict[str, float] = {"perfect": 1.0, "noisy": 0.75, "weak": 0.4}


def wrong_answer(sample: EmbodiedSample, rng: random.Random) -> str:
    """A plausible but wrong answer text for ``sample`` (canonical format of its answer type)."""
    t, a = sample.answer_type, sample.answer
    if t is AnswerType.MCQ and sample.options:
        letters = [chr(ord("A") + i) for i in range(len(sample.options))]
        others = [x for x in letters if x != str(a).strip().upper()[:1]] or letters
        return rng.choice(others)
    if t is AnswerType.YES_NO:
        return "no" if str(a).strip().lower().startswith("y") else "yes"
    if t is AnswerType.COUNT:
        n = int(a)
        return str(n + 1 if n == 0 or rng.random() < 0.5 else n - 1)
    if t is AnswerType.NUMBER:
        v = float(a) * (1.4 if rng.random() < 0.5 else 0.6)
        return f"{v:g}"
    if t is AnswerType.POINTS:
        pts = [(min(0.98, max(0.02, 1.0 - float(x))), min(0.98, max(0.02, 1.0 - float(y)))) for x, y in a]
        return "[" + ", ".join(f"({x:.2f}, {y:.2f})" for x, y in pts) + "]"
    if t is AnswerType.SEQUENCE and isinstance(a, list) and a:  # the last steps first: the plan cannot work
        b = list(reversed(a))[: max(1, len(a) // 2)]
        return "\n".join(f"{k + 1}. {step}" for k, step in enumerate(b))
    return "unknown"


class SimulatedTeacher:
    """The oracle, correct with probability ``accuracy`` per request (per-capability overrides).

    Args:
        accuracy: probability that one teacher sample is correct.
        capability_accuracy: per-capability accuracy (primary capability), overriding ``accuracy``.
        with_reasoning: targets carry the oracle reasoning in ``<think>``.
        k_vote: teacher samples per failure (kept on a strict majority of verified samples).
        seed: draw seed.
    """

    name = "simulated"

    def __init__(self, accuracy: float = 1.0, capability_accuracy: dict[str, float] | None = None,
                 with_reasoning: bool = False, k_vote: int = 1, seed: int = 0) -> None:
        self.accuracy, self.capability_accuracy = accuracy, dict(capability_accuracy or {})
        self.with_reasoning, self.k_vote, self.seed = with_reasoning, k_vote, seed

    def accuracy_for(self, sample: EmbodiedSample) -> float:
        """The teacher's accuracy on this sample's primary capability."""
        cap = sample.capabilities[0] if sample.capabilities else ""
        return self.capability_accuracy.get(cap, self.accuracy)

    def respond(self, sample: EmbodiedSample, vote_index: int = 0) -> str:
        """One teacher response (``[<think>...</think>]<answer>...</answer>``)."""
        rng = random.Random(zlib.crc32(f"{self.seed}|{sample.id}|{vote_index}".encode()))
        reasoning = sample.reasoning if self.with_reasoning else None
        if rng.random() < self.accuracy_for(sample):
            return target_text(sample, reasoning)
        return target_text(sample, reasoning, answer=wrong_answer(sample, rng))

    def fill(self, samples: Sequence[EmbodiedSample]) -> list[TeacherOutput]:
        """``k_vote`` responses per sample, verified by ``score_sample`` (:func:`training.teacher.vote`)."""
        return [vote(s, [self.respond(s, v) for v in range(self.k_vote)], self.with_reasoning) for s in samples]

