"""Teachers fill the diagnosed failures with reasoning + answer; only verified outputs reach the SFT phase.

* :class:`OracleTeacher`: the simulated world's own oracle reasoning and answer (true by construction).
* :class:`OpenAITeacher`: any OpenAI-compatible server (``vllm serve OpenGVLab/InternVL3_5-38B``,
  ``vllm serve Qwen/Qwen2.5-VL-72B-Instruct``...) through :class:`dppo_embodied.client.ChatClient`, which retries
  with the openai SDK's backoff; a server that stays down raises :class:`~dppo_embodied.errors.TrainingError`
  naming it.
* :class:`LocalTeacher`: a local transformers checkpoint through :class:`inference.policy.VLMPolicy`.

Teachers see what the policy sees: the one sample renderer (:func:`dppo_embodied.rendering.render_sample`, with
:data:`TEACHER_SYSTEM` as the system prompt) gives the conversation, sent as
:meth:`~dppo_embodied.conversation.Conversation.openai_messages` to a server or generated locally.

Verification ([TR] "rule-based filter ... voting"): each failure gets ``k_vote`` teacher samples, each scored by
``dppo_embodied.metrics.score_sample`` (the same success as the rewards); the failure is kept when a strict majority
succeeds (k = 1: the one sample succeeds), and its target is the first successful sample, read with the one
think/answer normaliser (:func:`dppo_embodied.answer_text.split_think`) and rebuilt with the one target builder
(:func:`dppo_embodied.answer_text.target_text`): ``[<think>reasoning</think>]<answer>answer</answer>``.
"""

from __future__ import annotations

import logging
import os
import random
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from dppo_embodied.answer_text import split_think, target_text
from dppo_embodied.conversation import Conversation
from dppo_embodied.errors import ClientError, TrainingError
from dppo_embodied.media import MediaLoader
from dppo_embodied.rendering import render_sample
from dppo_embodied.types import AnswerType, EmbodiedSample, format_answer
from training.algorithm.rewards import success_of
from training.algorithm.sample_io import oracle_target
from training.algorithm.teacher_config import TeacherSettings

logger = logging.getLogger(__name__)

#: System prompt of remote and local teachers.
TEACHER_SYSTEM = (
    "You are an expert embodied-reasoning teacher. Look at the image(s), reason step by step inside "
    "<think></think>, then give only the final answer inside <answer></answer>."
)


def teacher_conversation(sample: EmbodiedSample, loader: MediaLoader) -> Conversation:
    """What a teacher is asked: the sample rendered by the one renderer, with :data:`TEACHER_SYSTEM`."""
    return render_sample(sample, loader, system=TEACHER_SYSTEM)


@dataclass
class TeacherOutput:
    """A teacher's verdict on one failure.

    Attributes:
        sample_id: the failed sample.
        target: the verified SFT target, or None when verification failed.
        votes: teacher samples drawn.
        correct: how many of them ``score_sample`` marked successful.
    """

    sample_id: str
    target: str | None
    votes: int
    correct: int

    @property
    def verified(self) -> bool:
        """True when the failure is kept for SFT."""
        return self.target is not None


class Teacher(Protocol):
    """Fills failures with verified targets."""

    name: str

    def fill(self, samples: Sequence[EmbodiedSample]) -> list[TeacherOutput]:
        """One :class:`TeacherOutput` per sample, in order."""
        ...


#: Answer types whose verified answer equals the oracle answer exactly (the target then uses its canonical text).
_EXACT = {AnswerType.MCQ, AnswerType.YES_NO, AnswerType.COUNT}


def rewrite(text: str, with_reasoning: bool, sample: EmbodiedSample | None = None) -> str:
    """Normalise a teacher response to ``[<think>r</think>]<answer>a</answer>`` (the one target builder).

    The response is read with :func:`~dppo_embodied.answer_text.split_think` (the official think/answer rule the
    rewards and scorers use). The answer is the canonical oracle text for exact-match types (a verified
    ``"The answer is B."`` becomes ``B``), else the teacher's own answer.
    """
    reasoning, answer = split_think(text)
    if sample is not None and sample.answer_type in _EXACT:
        answer = format_answer(sample)
    return target_text(answer, reasoning if with_reasoning else None)


def vote(sample: EmbodiedSample, texts: Sequence[str], with_reasoning: bool) -> TeacherOutput:
    """Verify ``texts`` (one per vote) with ``score_sample``; keep the sample on a strict majority."""
    oks = [success_of(sample, t)[1] for t in texts]
    correct = sum(oks)
    keep = len(texts) > 0 and correct * 2 > len(texts)
    target = None
    if keep:
        first = next(t for t, ok in zip(texts, oks, strict=False) if ok)
        target = rewrite(first, with_reasoning, sample)
        if not success_of(sample, target)[1]:  # the rewrite must still score (e.g. no answer tags in the raw text)
            target = None
    return TeacherOutput(sample.id, target, len(texts), correct)


class OracleTeacher:
    """Targets from the sample's oracle answer (and reasoning), verified like any teacher's."""

    name = "oracle"

    def __init__(self, with_reasoning: bool = False) -> None:
        self.with_reasoning = with_reasoning

    def fill(self, samples: Sequence[EmbodiedSample]) -> list[TeacherOutput]:
        """Oracle targets; a sample whose own oracle does not score (a generator bug) is dropped with a warning."""
        out = []
        for s in samples:
            res = vote(s, [oracle_target(s, self.with_reasoning)], self.with_reasoning)
            if not res.verified:
                logger.warning("oracle target of %s does not pass its own metric; dropped", s.id)
            out.append(res)
        return out


class OpenAITeacher:
    """A remote teacher on an OpenAI-compatible server.

    Args:
        cfg: teacher settings (``base_url``, ``model``, ``k_vote``, retries, timeout...).
        loader: media loader.
        client: an optional ready :class:`~dppo_embodied.client.ChatClient` (tests).
    """

    name = "openai"

    def __init__(self, cfg: TeacherSettings, loader: MediaLoader | None = None, client: Any = None) -> None:
        from dppo_embodied.client import ChatClient, ClientConfig

        self.cfg, self.loader = cfg, loader or MediaLoader()
        self.client = client or ChatClient(ClientConfig(
            base_url=cfg.base_url, model=cfg.model, api_key=os.environ.get(cfg.api_key_env) or None,
            timeout_s=cfg.timeout_s, max_retries=cfg.max_retries, concurrency=cfg.concurrency,
            max_tokens=cfg.max_tokens, temperature=cfg.temperature))

    def fill(self, samples: Sequence[EmbodiedSample]) -> list[TeacherOutput]:
        """Ask the server ``k_vote`` times per failure and verify.

        Raises:
            TrainingError: when every request failed after retries (server down), naming the server.
        """
        if not samples:
            return []
        k = self.cfg.k_vote
        batch = []
        for s in samples:
            batch += [teacher_conversation(s, self.loader).openai_messages()] * k
        results = self.client.chat_many(batch, temperature=self.cfg.temperature if k > 1 else 0.0)
        errors = [r for r in results if isinstance(r, ClientError)]
        if errors and len(errors) == len(results):
            raise TrainingError(
                f"teacher server {self.cfg.base_url} (model {self.cfg.model}) failed on all {len(results)} requests "
                f"after {self.cfg.max_retries} retries each: {errors[0]}. Start the server (e.g. 'vllm serve "
                f"{self.cfg.model}') or set teacher.kind: oracle, then rerun with --resume (the RL phase is kept)")
        if errors:
            logger.warning("teacher: %d of %d requests failed after retries; those votes count as wrong",
                           len(errors), len(results))
        out = []
        for i, s in enumerate(samples):
            texts = [r.text for r in results[i * k:(i + 1) * k] if not isinstance(r, ClientError)]
            res = vote(s, texts, self.cfg.with_reasoning)
            res.votes = k
            out.append(res)
        return out

    def close(self) -> None:
        """Close the HTTP client."""
        self.client.close()


class LocalTeacher:
    """A local transformers teacher (any checkpoint :func:`inference.models.load_vlm` reads).

    Args:
        cfg: teacher settings (``model`` = checkpoint path).
        loader: media loader.
        policy: an optional ready :class:`inference.policy.VLMPolicy`.
    """

    name = "local"

    def __init__(self, cfg: TeacherSettings, loader: MediaLoader | None = None, policy: Any = None) -> None:
        from inference.policy import VLMPolicy

        self.cfg, self.loader = cfg, loader or MediaLoader()
        self.policy = policy or VLMPolicy.from_pretrained(cfg.model, max_new_tokens=cfg.max_tokens)

    def fill(self, samples: Sequence[EmbodiedSample]) -> list[TeacherOutput]:
        """Generate ``k_vote`` samples per failure and verify."""
        if not samples:
            return []
        k = self.cfg.k_vote
        convs = [teacher_conversation(s, self.loader) for s in samples]
        texts = self.policy.generate(convs, temperature=self.cfg.temperature if k > 1 else 0.0, num_return_sequences=k)
        if k == 1:
            texts = [[t] for t in texts]
        return [vote(s, ts, self.cfg.with_reasoning) for s, ts in zip(samples, texts, strict=False)]


# ----------------------------------------------------------------- the simulated imperfect teacher (ablations)
# An imperfect teacher for ablations: the simulator's oracle, right only with a given (per-capability) accuracy.
#
# Real teachers (Qwen3-VL-Plus, InternVL3.5-38B in [TR]) are wrong on part of the failures they are asked to fill, and
# DPPO keeps a teacher output only when the rule-based reward verifies it (:func:`training.algorithm.teacher.vote`). To
# study that on the CPU, :class:`SimulatedTeacher` answers each request with the oracle's reasoning and answer with
# probability ``accuracy`` (per capability: ``capability_accuracy[primary capability]``, else ``accuracy``), and
# otherwise with a plausible wrong answer of the same type: another option letter, the opposite yes/no, a count off by
# one, a number 40 % off, a point mirrored through the image centre, the second half of a plan in reverse order.
# Draws are deterministic per (seed, sample id, vote), so a resumed run asks the same questions and gets the same
# answers.
#
# Verification then rejects the wrong ones: a failure whose teacher answer is wrong gets no SFT target, but the call
# is spent (:class:`training.algorithm.teacher_budget.TeacherLedger` counts it). Presets: perfect (1.0), noisy (0.75),
# weak (0.4).

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
            return target_text(format_answer(sample), reasoning)
        return target_text(wrong_answer(sample, rng), reasoning)

    def fill(self, samples: Sequence[EmbodiedSample]) -> list[TeacherOutput]:
        """``k_vote`` responses per sample, verified by ``score_sample`` (:func:`training.algorithm.teacher.vote`)."""
        return [vote(s, [self.respond(s, v) for v in range(self.k_vote)], self.with_reasoning) for s in samples]


def make_teacher(cfg: TeacherSettings, loader: MediaLoader | None = None, seed: int = 0) -> Teacher:
    """The teacher named by ``cfg.kind`` (an oracle with ``accuracy < 1`` is the simulated imperfect teacher)."""
    if cfg.kind == "oracle" and (cfg.accuracy < 1 or cfg.capability_accuracy):
        return SimulatedTeacher(cfg.accuracy, cfg.capability_accuracy, cfg.with_reasoning, cfg.k_vote, seed)
    if cfg.kind == "oracle":
        return OracleTeacher(cfg.with_reasoning)
    if cfg.kind == "openai":
        return OpenAITeacher(cfg, loader)
    return LocalTeacher(cfg, loader)
