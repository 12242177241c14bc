"""Difficulty estimation and the RL buffer.

SR(c) = (1/T) Σ_i 1[rollout i of candidate c succeeds] ([P]); difficulty D = 1 − SR ([TR]). Rollouts are sampled
(temperature > 0; 0 = greedy, for engine comparisons) with the current policy on the rollout engine
(:mod:`training.algorithm.rollout_engine`: in process, or on served replicas of the checkpoint); success is
``dppo_embodied.metrics.score_sample(...).success`` for questions and the episode's success for closed-loop tasks
(:mod:`training.algorithm.env_rollouts`). A rollout that failed for good (its server answered with an error after
the retries) counts as a failure; ``SRRecord.failed`` counts them and ``failure`` keeps the first reason.

Buffer rules ([D], docs/training.md):

* SR >= ``trivial_sr`` (default 1): trivial, dropped from RL (GRPO has no gradient on an all-success group);
* SR <= ``intractable_sr`` (default 0): intractable for RL, routed to the weakness pool (the SFT phase's D_weak);
* otherwise RL candidates, most informative first (SR closest to 1/2, where the group reward variance p(1−p)
  peaks), capped so that no task and no (primary) capability exceeds its share of the buffer. A cap smaller than
  ``1 / number of groups`` cannot be met and is raised to that value (logged).

``sampling: random`` (ablation) draws a buffer of the same size uniformly from all candidates, SR ignored.
"""

from __future__ import annotations

import logging
import math
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

from dppo_embodied.generation import ChatRequest, GenerationSettings, request_seed
from dppo_embodied.media import MediaLoader
from dppo_embodied.rendering import render_sample
from dppo_embodied.types import AnswerType, EmbodiedSample
from training.algorithm.difficulty_config import DifficultySettings
from training.algorithm.rewards import is_episode, success_of
from training.algorithm.sample_io import task_of
from training.runs.distributed import gather_dict, shard

logger = logging.getLogger(__name__)


@dataclass
class SRRecord:
    """Success statistics of one candidate.

    Attributes:
        sr: success rate over the rollouts, in [0, 1].
        n: number of rollouts.
        mean_reward: mean task reward (score value) over the rollouts.
        task: the sample's task.
        capability: its primary capability ("" when untagged).
        failed: rollouts that failed for good (no answer from the engine; counted as failures in ``sr``).
        failure: the first failure's reason ("" when none failed).
        success_text: the first successful rollout's text, when the roller keeps its texts (``QARoller(...,
            return_texts=True)``, as the metaloop's difficulty step and diagnosis do); ``""`` otherwise. A verified
            target that costs no teacher call: D_self of the loop's SFT phase (``sft.self_weight``).
        answer_type: the sample's answer type (``yes_no``, ``mcq``, ...; ``episode`` for closed-loop samples; ``""``
            in tables written before it was recorded).
    """

    sr: float
    n: int
    mean_reward: float
    task: str
    capability: str
    failed: int = 0
    failure: str = ""
    success_text: str = ""
    answer_type: str = ""

    @property
    def difficulty(self) -> float:
        """1 − SR."""
        return 1.0 - self.sr


class Roller(Protocol):
    """Runs ``n`` rollouts per sample and returns ``(reward, success)`` per rollout.

    A roller may keep ``failures``: ``sample id -> reasons`` of the rollouts that failed for good (each counted as
    ``(0, False)``); :func:`estimate_success_rates` records them in the SR table.
    """

    def __call__(self, samples: Sequence[EmbodiedSample], n: int,
                 temperature: float) -> list[list[tuple[float, bool]]]:
        """Rollout outcomes, one list of ``n`` per sample."""
        ...


class QARoller:
    """Rollouts of single-turn questions on the rollout engine, scored by ``score_sample``; each sample is rendered
    by the one sample renderer (:func:`dppo_embodied.rendering.render_sample`).

    Args:
        engine: the :class:`~training.algorithm.rollout_engine.RolloutEngine` serving the current checkpoint.
        loader: media loader.
        max_new_tokens: generation cap.
        return_texts: also keep the generated texts (diagnosis uses them) in :attr:`last_texts`.
        journal: the step's :class:`~training.algorithm.rollout_journal.RolloutJournal` (key
            ``<sample id>#<rollout index>``): journaled rollouts are not generated again.
        seed: give each rollout its own sampling seed derived from this and its key
            (:func:`~dppo_embodied.generation.request_seed`), for serving engines; ``None`` = unseeded.
    """

    def __init__(self, engine: Any, loader: MediaLoader, max_new_tokens: int = 24, return_texts: bool = False,
                 journal: Any = None, seed: int | None = None) -> None:
        self.engine, self.loader, self.max_new_tokens, self.seed = engine, loader, max_new_tokens, seed
        self.return_texts, self.journal = return_texts, journal
        self.last_texts: dict[str, list[str]] = {}
        self.failures: dict[str, list[str]] = {}

    def __call__(self, samples: Sequence[EmbodiedSample], n: int,
                 temperature: float) -> list[list[tuple[float, bool]]]:
        """Generate ``n`` completions per sample and score them (one request per rollout)."""
        if not samples:
            return []
        settings = GenerationSettings(max_tokens=self.max_new_tokens, temperature=temperature)
        keys = {s.id: [f"{s.id}#{r}" for r in range(n)] for s in samples}
        jn = self.journal
        known = {s.id for s in samples if jn is not None and all(k in jn for k in keys[s.id])}
        requests, request_keys = [], []
        for s in samples:
            if s.id in known:
                continue  # every rollout journaled: not even rendered
            req = ChatRequest(render_sample(s, self.loader), settings, id=s.id)
            if self.seed is None:
                requests += [req] * n
            else:
                requests += [replace(req, seed=request_seed(self.seed, k)) for k in keys[s.id]]
            request_keys += keys[s.id]
        results = dict(zip(request_keys, self.engine.generate(requests, request_keys, jn), strict=True))
        out = []
        for s in samples:
            texts = [results[k] if k in results else jn.get(k) for k in keys[s.id]]
            if self.return_texts:
                self.last_texts[s.id] = [t if isinstance(t, str) else "" for t in texts]
            reasons = [str(t) for t in texts if not isinstance(t, str)]
            if reasons:
                self.failures.setdefault(s.id, []).extend(reasons)
            out.append([success_of(s, t)[:2] if isinstance(t, str) else (0.0, False) for t in texts])
        return out


def primary_capability(sample: EmbodiedSample) -> str:
    """The first capability tag (caps and reports use it), or ``""``."""
    return sample.capabilities[0] if sample.capabilities else ""


def estimate_success_rates(
    samples: Sequence[EmbodiedSample],
    qa_roller: Roller | None,
    rollouts: int,
    temperature: float,
    episode_roller: Roller | None = None,
    chunk: int = 64,
    progress: bool = True,
    desc: str = "difficulty",
) -> dict[str, SRRecord]:
    """SR of every sample from ``rollouts`` sampled rollouts, computed on this rank's shard and gathered.

    Args:
        samples: candidates (identical list on every rank).
        qa_roller: rollouts of question samples.
        rollouts: T.
        temperature: sampling temperature.
        episode_roller: rollouts of closed-loop episode samples (``metadata["env_id"]``).
        chunk: samples per generation call.
        progress: show a progress bar.
        desc: progress-bar label.

    Returns:
        ``sample_id -> SRRecord`` for every sample, identical on all ranks.
    """
    from tqdm.auto import tqdm

    mine = shard(list(samples))
    local: dict[str, Any] = {}
    bar = tqdm(total=len(mine), desc=desc, disable=not progress, leave=False)
    for kind, roller in (("qa", qa_roller), ("episode", episode_roller)):
        group = [s for s in mine if is_episode(s) == (kind == "episode")]
        if group and roller is None:
            raise ValueError(f"{len(group)} {kind} samples but no {kind} roller")
        for i in range(0, len(group), chunk):
            part = group[i:i + chunk]
            outcomes = roller(part, rollouts, temperature) if roller else []
            failures = getattr(roller, "failures", {})
            texts = getattr(roller, "last_texts", {})
            for s, outs in zip(part, outcomes, strict=False):
                n = len(outs)
                reasons = failures.get(s.id, [])
                won = [t for t, (_, ok) in zip(texts.get(s.id, []), outs, strict=False) if ok and t]
                local[s.id] = asdict(SRRecord(
                    sr=sum(ok for _, ok in outs) / n if n else 0.0, n=n,
                    mean_reward=sum(r for r, _ in outs) / n if n else 0.0,
                    task=task_of(s), capability=primary_capability(s), failed=len(reasons),
                    failure=reasons[0] if reasons else "", success_text=won[0] if won else "",
                    answer_type="episode" if kind == "episode" else s.answer_type.value))
            bar.update(len(part))
    bar.close()
    return {k: SRRecord(**v) for k, v in gather_dict(local).items()}


def failure_summary(table: dict[str, SRRecord], limit: int = 5) -> dict[str, Any]:
    """How many rollouts failed for good and their most frequent (first) reasons, for a step's results."""
    reasons = Counter(r.failure for r in table.values() if r.failed)
    return {"failed_rollouts": sum(r.failed for r in table.values()),
            "failure_reasons": dict(reasons.most_common(limit))}


@dataclass
class Buffer:
    """The outcome of buffer building.

    Attributes:
        rl: ids for the RL phase, in priority order.
        weak: ids routed to the weakness pool (intractable).
        trivial: ids dropped as trivial.
        capped: ids left out of RL by the task/capability/answer-type caps.
        sampling: ``difficulty`` or ``random``.
        caps: effective caps ``{"task": share, "capability": share[, "answer_type": share]}``.
    """

    rl: list[str] = field(default_factory=list)
    weak: list[str] = field(default_factory=list)
    trivial: list[str] = field(default_factory=list)
    capped: list[str] = field(default_factory=list)
    sampling: str = "difficulty"
    caps: dict[str, float] = field(default_factory=dict)

    def shares(self, table: dict[str, SRRecord], key: str) -> dict[str, float]:
        """Share of each task (``key="task"``) or capability in the RL buffer."""
        c = Counter(getattr(table[i], key) for i in self.rl)
        return {k: v / len(self.rl) for k, v in c.items()} if self.rl else {}


def _effective_share(share: float, groups: int) -> float:
    return max(share, 1.0 / groups) if groups else share


def _apply_caps(order: list[str], table: dict[str, SRRecord], size: int,
                shares: dict[str, float]) -> tuple[list[str], dict[str, float]]:
    """The first ``size`` ids of ``order`` whose group (``SRRecord`` field named by each key of ``shares``) stays
    within its share of the buffer; returns them and the effective shares."""
    eff: dict[str, float] = {}
    for key, share in shares.items():
        groups = len({getattr(table[i], key) for i in order})
        eff[key] = _effective_share(share, groups)
        if eff[key] > share:
            logger.warning("buffer: a %s cap of %.2f cannot be met with %d distinct value(s); using %.2f",
                           key, share, groups, eff[key])

    def limit(e: float, m: int) -> int:
        return max(1, math.floor(e * m + 1e-9))

    def over_cap(ids: list[str], m: int) -> list[str]:
        counts = {key: Counter(getattr(table[i], key) for i in ids) for key in eff}
        return [i for i in reversed(ids) if any(counts[key][getattr(table[i], key)] > limit(e, m)
                                                for key, e in eff.items())]

    chosen: list[str] = []
    n: dict[str, Counter[str]] = {key: Counter() for key in eff}
    for i in order:
        if len(chosen) >= size:
            break
        if all(n[key][getattr(table[i], key)] < limit(e, size) for key, e in eff.items()):
            chosen.append(i)
            for key in eff:
                n[key][getattr(table[i], key)] += 1
    # The buffer may come out smaller than `size`; trim until every share holds relative to the actual size.
    while chosen:
        over = over_cap(chosen, len(chosen))
        if not over:
            break
        chosen.remove(over[0])
    return chosen, eff


def _balance_yes_no(order: list[str], by_id: dict[str, EmbodiedSample], table: dict[str, SRRecord]) -> list[str]:
    """``order`` with each yes/no task's candidates alternating gold ``yes`` / gold ``no`` (each side most informative
    first) in the places the task held, cut to twice the smaller side: every prefix of a task's candidates, hence
    what the caps take of it, holds both answers equally (within one). Other answer types keep their places."""
    def yes_no(i: str) -> bool:
        return by_id[i].answer_type is AnswerType.YES_NO

    queues: dict[str, dict[str, list[str]]] = defaultdict(lambda: {"yes": [], "no": []})
    for i in order:
        if yes_no(i):
            queues[table[i].task][str(by_id[i].answer)].append(i)
    paired: dict[str, list[str]] = {}
    for task, q in queues.items():
        m = min(len(q["yes"]), len(q["no"]))
        paired[task] = [i for pair in zip(q["yes"][:m], q["no"][:m], strict=True) for i in pair]
    out, used = [], Counter[str]()
    for i in order:
        if not yes_no(i):
            out.append(i)
            continue
        task = table[i].task
        if used[task] < len(paired[task]):
            out.append(paired[task][used[task]])
            used[task] += 1
    return out


def build_buffer(samples: Sequence[EmbodiedSample], table: dict[str, SRRecord], cfg: DifficultySettings,
                 sampling: str = "difficulty", seed: int = 0) -> Buffer:
    """Split candidates into RL buffer, weakness pool and trivial set (module docstring for the rules).

    Args:
        samples: the candidates.
        table: their SR records.
        cfg: thresholds and caps.
        sampling: ``difficulty`` or ``random``.
        seed: seed of the random ablation and of tie-breaking.

    Returns:
        The :class:`Buffer` (deterministic given its inputs, hence identical on every rank).
    """
    rng = random.Random(seed)
    ids = [s.id for s in samples if s.id in table]
    trivial = [i for i in ids if table[i].sr >= cfg.trivial_sr]
    weak = [i for i in ids if table[i].sr <= cfg.intractable_sr]
    mid = [i for i in ids if cfg.intractable_sr < table[i].sr < cfg.trivial_sr]
    tiebreak = {i: rng.random() for i in ids}
    order = sorted(mid, key=lambda i: (abs(table[i].sr - 0.5), tiebreak[i]))
    if cfg.balance_yes_no:
        order = _balance_yes_no(order, {s.id: s for s in samples}, table)
    shares = {"task": cfg.max_task_share, "capability": cfg.max_capability_share}
    if cfg.max_answer_type_share < 1:
        shares["answer_type"] = cfg.max_answer_type_share
    rl, caps = _apply_caps(order, table, min(cfg.buffer_size, len(order)), shares)
    capped = [i for i in mid if i not in set(rl)]
    if sampling == "random":
        rl = rng.sample(ids, k=len(rl))
        capped = []
    elif sampling != "difficulty":
        raise ValueError(f"sampling must be 'difficulty' or 'random', got {sampling!r}")
    logger.info("buffer (%s): %d RL, %d weak, %d trivial, %d capped of %d candidates", sampling, len(rl), len(weak),
                len(trivial), len(capped), len(ids))
    return Buffer(rl=rl, weak=weak, trivial=trivial, capped=capped, sampling=sampling, caps=caps)


def sr_summary(table: dict[str, SRRecord],
               by: Callable[[SRRecord], str] = lambda r: r.task) -> dict[str, dict[str, float]]:
    """Mean SR and count per group (task by default)."""
    groups: dict[str, list[float]] = defaultdict(list)
    for r in table.values():
        groups[by(r)].append(r.sr)
    return {k: {"mean_sr": sum(v) / len(v), "n": len(v)} for k, v in sorted(groups.items())}


def table_to_json(table: dict[str, SRRecord]) -> dict[str, dict[str, Any]]:
    """JSON form of an SR table."""
    return {k: asdict(v) for k, v in table.items()}


def table_from_json(data: dict[str, dict[str, Any]]) -> dict[str, SRRecord]:
    """Inverse of :func:`table_to_json`."""
    return {k: SRRecord(**v) for k, v in data.items()}
