"""Teachers fill the diagnosed failures with reasoning + answer; only verified outputs reach the SFT phase.

* :class:`OracleTeacher`: the simulated world's own oracle reasoning and answer (true by construction).
* :class:`OpenAITeacher`: any OpenAI-compatible server (``vllm serve OpenGVLab/InternVL3_5-38B``,
  ``vllm serve Qwen/Qwen2.5-VL-72B-Instruct``...) through :class:`dppo_embodied.client.ChatClient`, which retries
  with backoff; a server that stays down raises :class:`~dppo_embodied.errors.TrainingError` naming it.
* :class:`LocalTeacher`: a local transformers checkpoint through :class:`training.policy.VLMPolicy`.

Verification ([TR] "rule-based filter ... voting"): each failure gets ``k_vote`` teacher samples, each scored by
``benchmarks.metrics.score_sample`` (the same success as the rewards); the failure is kept when a strict majority
succeeds (k = 1: the one sample succeeds), and its target is the first successful sample, rewritten as
``[<think>reasoning</think>]<answer>answer</answer>``.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from dppo_embodied.errors import ClientError, TrainingError
from dppo_embodied.parsing import strip_think
from dppo_embodied.types import AnswerType, EmbodiedSample, format_answer
from training.metaloop_config import TeacherSettings
from training.rewards import success_of
from training.sample_io import MediaLoader, prompt_text, target_text

logger = logging.getLogger(__name__)

#: System prompt of remote and local teachers.
TEACHER_SYSTEM = (
    "You are an expert embodied-reasoning teacher. Look at the image(s), reason step by step inside "
    "<think></think>, then give only the final answer inside <answer></answer>."
)

_THINK = re.compile(r"<think>(.*?)</think>", re.S)


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
    """Normalise a teacher response to ``[<think>r</think>]<answer>a</answer>``.

    The answer is the canonical oracle text for exact-match types (a verified ``"The answer is B."`` becomes
    ``B``), else the teacher's own answer (``strip_think``).
    """
    answer = format_answer(sample) if sample is not None and sample.answer_type in _EXACT else strip_think(text)
    m = _THINK.search(text or "")
    reasoning = m.group(1).strip() if (with_reasoning and m) else None
    think = f"<think>{reasoning}</think>" if reasoning else ""
    return f"{think}<answer>{answer}</answer>"


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
            t = target_text(s, s.reasoning if self.with_reasoning else None)
            res = vote(s, [t], self.with_reasoning)
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
            max_tokens=cfg.max_tokens, temperature=cfg.temperature, backoff_s=0.2, backoff_cap_s=2.0))

    def fill(self, samples: Sequence[EmbodiedSample]) -> list[TeacherOutput]:
        """Ask the server ``k_vote`` times per failure and verify.

        Raises:
            TrainingError: when every request failed after retries (server down), naming the server.
        """
        from dppo_embodied.client import build_messages

        if not samples:
            return []
        k = self.cfg.k_vote
        batch = []
        for s in samples:
            msgs = build_messages(prompt_text(s), images=self.loader.load(s), system=TEACHER_SYSTEM)
            batch += [msgs] * k
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
    """A local transformers teacher (any checkpoint :func:`training.models.load_vlm` reads).

    Args:
        cfg: teacher settings (``model`` = checkpoint path).
        loader: media loader.
        policy: an optional ready :class:`training.policy.VLMPolicy`.
    """

    name = "local"

    def __init__(self, cfg: TeacherSettings, loader: MediaLoader | None = None, policy: Any = None) -> None:
        from training.policy import VLMPolicy

        self.cfg, self.loader = cfg, loader or MediaLoader()
        self.policy = policy or VLMPolicy.from_pretrained(cfg.model, max_new_tokens=cfg.max_tokens)

    def fill(self, samples: Sequence[EmbodiedSample]) -> list[TeacherOutput]:
        """Generate ``k_vote`` samples per failure and verify."""
        from training.policy import ChatRequest

        if not samples:
            return []
        k = self.cfg.k_vote
        reqs = [ChatRequest(prompt_text(s), images=self.loader.load(s), system=TEACHER_SYSTEM) for s in samples]
        texts = self.policy.generate(reqs, temperature=self.cfg.temperature if k > 1 else 0.0, num_return_sequences=k)
        if k == 1:
            texts = [[t] for t in texts]
        return [vote(s, ts, self.cfg.with_reasoning) for s, ts in zip(samples, texts, strict=False)]


def make_teacher(cfg: TeacherSettings, loader: MediaLoader | None = None, seed: int = 0) -> Teacher:
    """The teacher named by ``cfg.kind`` (an oracle with ``accuracy < 1`` is the simulated imperfect teacher)."""
    if cfg.kind == "oracle" and (cfg.accuracy < 1 or cfg.capability_accuracy):
        from training.imperfect_teacher import SimulatedTeacher

        return SimulatedTeacher(cfg.accuracy, cfg.capability_accuracy, cfg.with_reasoning, cfg.k_vote, seed)
    if cfg.kind == "oracle":
        return OracleTeacher(cfg.with_reasoning)
    if cfg.kind == "openai":
        return OpenAITeacher(cfg, loader)
    return LocalTeacher(cfg, loader)
