"""Dynamic sampling for GRPO (DAPO, arXiv 2503.14476) on TRL's public API: keep the batches full of informative groups.

A GRPO group whose ``G`` rewards are all equal (all solved or all failed) has zero advantage and gives no gradient;
DAPO drops such groups and samples more prompts until the batch is full. TRL 1.16 has no such option (trl#3708; it
only logs ``frac_reward_zero_std``). We build it from two public pieces, without touching TRL internals:

1. **A live prompt stream.** The RL dataset is a ``datasets.IterableDataset`` over :meth:`DynamicSampler.stream`, a
   generator that picks the next prompt from an *active set* at the moment TRL's dataloader asks for it (TRL streams
   iterable datasets lazily; ``shuffle_dataset`` is turned off so no shuffle buffer reads ahead). TRL repeats each
   yielded prompt ``G`` times as usual.
2. **A callback** (:class:`DynamicSamplingCallback`, ``on_step_end``) reads the rewards the step produced from the
   :class:`~training.algorithm.rewards.RewardRecorder` and hands them to :meth:`DynamicSampler.observe`: every prompt
   whose group had zero reward variance is **dropped** from the active set (*saturated* if it was all successes,
   *stuck* if all failures) and its slot is **refilled** from a reserve of candidates, most informative first (SR
   closest to 1/2 in the difficulty table). Dropped prompts are reported to the stop rule as settled.

With ``probe_rollouts = k > 0`` the stream also **pre-filters**: before a prompt enters a batch it gets ``k`` cheap
sampled rollouts with the current policy; a prompt whose ``k`` outcomes all agree is dropped and refilled before it
costs a GRPO group (up to ``max_tries`` candidates per slot, then the next one is taken unprobed so a batch never
stalls). This is DAPO's over-sample-and-filter, paid in ``k`` extra generations per candidate (counted in the
phase's compute, like every other rollout). With ``k = 0`` the mechanism costs nothing extra: a zero-variance group
is still spent once, but its prompt never comes back.

TRL's dataloader reads one generation batch ahead, so a drop takes effect one batch after the group that revealed it.
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from transformers import TrainerCallback

from training.algorithm.rewards import RewardRecord, RewardRecorder
from training.runs.distributed import gather_list

logger = logging.getLogger(__name__)

#: probe(rows, k) -> per row, the k success flags of k sampled rollouts with the current policy
Probe = Callable[[Sequence[dict[str, Any]], int], list[list[bool]]]


@dataclass
class SamplerStats:
    """What dynamic sampling did in one phase.

    Attributes:
        drawn: prompts yielded to TRL.
        groups: groups observed (one per drawn prompt once its rewards are in).
        zero_variance: observed groups with zero reward variance.
        dropped: prompts dropped from the active set, by reason (``saturated``, ``stuck``, ``probe_flat``).
        refilled: prompts moved from the reserve into the active set.
        probed: prompts pre-filtered with cheap rollouts.
        probe_rollouts: rollouts spent on pre-filtering.
        exhausted: the reserve ran dry at least once (the active set then shrinks).
    """

    drawn: int = 0
    groups: int = 0
    zero_variance: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    refilled: int = 0
    probed: int = 0
    probe_rollouts: int = 0
    exhausted: bool = False

    def to_json(self) -> dict[str, Any]:
        """JSON form (with ``zero_variance_frac`` of the observed groups)."""
        return {"drawn": self.drawn, "groups": self.groups, "zero_variance": self.zero_variance,
                "zero_variance_frac": self.zero_variance / self.groups if self.groups else None,
                "dropped": dict(self.dropped), "refilled": self.refilled, "probed": self.probed,
                "probe_rollouts": self.probe_rollouts, "exhausted": self.exhausted}


class DynamicSampler:
    """The active set of RL prompts, its reserve, and the drop/refill rule.

    Args:
        rows: every candidate row (TRL format: ``prompt``, ``images``, ``sample_id``) that may be trained on.
        active: ids of the initial active set (the RL buffer, priority order).
        reserve: ids that may refill dropped slots, most informative first.
        seed: sampling seed.
        probe: optional pre-filter (``probe(rows, k)``); used when ``probe_rollouts > 0``.
        probe_rollouts: ``k`` cheap rollouts per candidate before it enters a batch (0 = no pre-filter).
        max_tries: candidates probed per slot before one is taken unprobed.
        on_drop: called with ``(sample_id, reason)`` when a prompt is dropped (the stop rule marks it settled).
        on_refill: called with the id of every prompt moved in from the reserve (the stop rule starts tracking it).
    """

    def __init__(self, rows: Sequence[dict[str, Any]], active: Sequence[str], reserve: Sequence[str], seed: int = 0,
                 probe: Probe | None = None, probe_rollouts: int = 0, max_tries: int = 4,
                 on_drop: Callable[[str, str], None] | None = None,
                 on_refill: Callable[[str], None] | None = None) -> None:
        self.rows = {r["sample_id"]: r for r in rows}
        missing = [i for i in [*active, *reserve] if i not in self.rows]
        if missing:
            raise ValueError(f"dynamic sampling: {len(missing)} ids have no row, e.g. {missing[0]!r}")
        if not active:
            raise ValueError("dynamic sampling needs a non-empty active set")
        self.active: list[str] = list(dict.fromkeys(active))
        seen = set(self.active)
        self.reserve: list[str] = [i for i in dict.fromkeys(reserve) if i not in seen]
        self.rng = random.Random(seed)
        self.probe, self.probe_rollouts, self.max_tries = probe, probe_rollouts, max(1, max_tries)
        self.on_drop, self.on_refill = on_drop, on_refill
        self.stats = SamplerStats()
        self.retired: dict[str, str] = {}
        self._queue: list[str] = []

    # ------------------------------------------------------------------ the active set
    def _refill(self) -> str | None:
        if not self.reserve:
            self.stats.exhausted = True
            return None
        sid = self.reserve.pop(0)
        self.active.append(sid)
        self.stats.refilled += 1
        if self.on_refill:
            self.on_refill(sid)
        return sid

    def drop(self, sample_id: str, reason: str) -> None:
        """Remove ``sample_id`` from the active set (once) and refill its slot from the reserve."""
        if sample_id not in self.active:
            return
        self.active.remove(sample_id)
        if sample_id in self._queue:
            self._queue.remove(sample_id)
        self.retired[sample_id] = reason
        self.stats.dropped[reason] += 1
        if self.on_drop:
            self.on_drop(sample_id, reason)
        self._refill()

    def _next_candidate(self) -> str:
        if not self._queue:  # one pass over the active set in random order, then reshuffle
            if not self.active:  # every prompt was dropped and the reserve is empty: recycle the retired ones
                self.active = list(self.retired)
                self.retired.clear()
            self._queue = list(self.active)
            self.rng.shuffle(self._queue)
        return self._queue.pop(0)

    def next_id(self) -> str:
        """The next prompt for a batch (pre-filtered when ``probe_rollouts > 0``)."""
        if self.probe is None or self.probe_rollouts <= 0:
            return self._next_candidate()
        for _ in range(self.max_tries):
            sid = self._next_candidate()
            oks = self.probe([self.rows[sid]], self.probe_rollouts)[0]
            self.stats.probed += 1
            self.stats.probe_rollouts += len(oks)
            if oks and any(oks) and not all(oks):
                return sid
            self.drop(sid, "probe_flat")
        return self._next_candidate()

    def stream(self) -> Iterator[dict[str, Any]]:
        """Endless rows for TRL (each yielded once; TRL repeats it ``G`` times)."""
        while True:
            sid = self.next_id()
            self.stats.drawn += 1
            yield self.rows[sid]

    # ------------------------------------------------------------------ feedback
    def observe(self, records: Sequence[RewardRecord]) -> list[str]:
        """Fold in one step's reward records; drop every prompt whose group had zero reward variance.

        Records of ids the sampler does not manage (closed-loop episodes) are ignored.

        Returns:
            The ids dropped.
        """
        groups: dict[str, list[RewardRecord]] = defaultdict(list)
        for r in records:
            if r.sample_id in self.rows:
                groups[r.sample_id].append(r)
        dropped = []
        for sid, recs in groups.items():
            self.stats.groups += 1
            rewards = [r.reward for r in recs]
            if len(recs) < 2 or max(rewards) - min(rewards) > 1e-9:
                continue
            self.stats.zero_variance += 1
            reason = "saturated" if all(r.success for r in recs) else "stuck" if not any(r.success for r in recs) \
                else "flat"
            if sid in self.active:
                self.drop(sid, reason)
                dropped.append(sid)
        return dropped


class DynamicSamplingCallback(TrainerCallback):
    """Feeds each step's rewards to the sampler (``on_step_end``), so zero-variance prompts are dropped and refilled.

    Args:
        sampler: the phase's sampler.
        recorder: this rank's reward recorder (records carry the optimizer step they were generated for).
    """

    def __init__(self, sampler: DynamicSampler, recorder: RewardRecorder) -> None:
        self.sampler, self.recorder = sampler, recorder
        self._seen = 0

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        """Observe the records added since the last call."""
        local = [r.__dict__ for r in self.recorder.records[self._seen:]]
        self._seen += len(local)
        # every rank must take the same decisions: observe the records of all ranks
        self.sampler.observe([RewardRecord(**d) for d in gather_list(local)])
        return control


def reserve_order(candidates: Sequence[str], sr: dict[str, float], sampling: str, seed: int = 0) -> list[str]:
    """Refill order: SR closest to 1/2 first (``difficulty``), or a random order (``random`` ablation)."""
    ids = list(dict.fromkeys(candidates))
    rng = random.Random(seed)
    if sampling == "random":
        rng.shuffle(ids)
        return ids
    tie = {i: rng.random() for i in ids}
    return sorted(ids, key=lambda i: (abs(sr.get(i, 0.0) - 0.5), tie[i]))


def streaming_dataset(sampler: DynamicSampler) -> Any:
    """The ``datasets.IterableDataset`` TRL trains on (rows drawn live from ``sampler``)."""
    from datasets import IterableDataset

    return IterableDataset.from_generator(sampler.stream)


def qa_probe(policy: Any, index: Any, max_new_tokens: int, temperature: float) -> Probe:
    """A probe that samples ``k`` completions per QA row with ``policy`` and scores them with ``score_sample``.

    Rows of samples the index does not know (closed-loop decision states) are never filtered (reported as mixed).
    """
    from dppo_embodied.conversation import Conversation
    from dppo_embodied.rendering import prompt_text
    from training.algorithm.rewards import success_of

    def probe(rows: Sequence[dict[str, Any]], k: int) -> list[list[bool]]:
        out: list[list[bool]] = []
        for row in rows:
            sample = index.get(row["sample_id"])
            if sample is None:
                out.append([True, False])
                continue
            was_training = policy.model.training
            policy.model.eval()
            texts = policy.generate([Conversation(prompt_text(sample), tuple(row["images"]))],
                                    max_new_tokens=max_new_tokens, temperature=temperature, num_return_sequences=k)
            if was_training:
                policy.model.train()
            ts = texts[0] if k > 1 else texts
            out.append([success_of(sample, t)[1] for t in ts])
        return out

    return probe


def dynamic_dataset(rows: Sequence[dict[str, Any]], reserve: Sequence[Any], tracker: Any, initial_sr: dict[str, float],
                    recorder: RewardRecorder, cfg: Any, make_rows: Callable[[Sequence[Any]], list[dict[str, Any]]],
                    index: Any, *, sampling: str = "difficulty", seed: int = 0,
                    policy: Any = None) -> tuple[Any, DynamicSamplingCallback]:
    """The live dataset and callback of one RL phase with dynamic sampling (``cfg`` = the phase's GRPOSettings).

    Args:
        rows: the buffer's rows (questions and closed-loop decision states): the initial active set.
        reserve: candidate samples outside the buffer that may refill dropped slots.
        tracker: the phase's :class:`training.algorithm.stagnation.SaturationTracker` (refills are tracked, drops
            settled).
        initial_sr: SR of every candidate from the difficulty estimation (refill order).
        recorder: the phase's reward recorder.
        cfg: the phase's settings (``dynamic_sampling``, temperature, completion length).
        make_rows: GRPO rows of reserve samples (the phase's row builder; samples whose media fail are skipped).
        index: sample index (probe scoring; reserve samples are added to it by the caller).
        sampling: ``difficulty`` or ``random`` (refill order).
        seed: sampling seed.
        policy: a :class:`inference.policy.VLMPolicy` sharing the trained model (needed for probe rollouts).

    Raises:
        ConfigError: probe rollouts requested without a policy, or in a multi-process run.
    """
    from dppo_embodied.errors import ConfigError
    from training.algorithm.sample_io import task_of
    from training.runs.distributed import rank_world

    ds = cfg.dynamic_sampling
    if ds.probe_rollouts and (policy is None or rank_world()[1] > 1):
        raise ConfigError("grpo.dynamic_sampling.probe_rollouts: probe rollouts need the policy and a single process; "
                          "set it to 0 (drop-and-refill only) for multi-process runs")
    active = [r["sample_id"] for r in rows]
    in_active = set(active)
    extra = [s for s in reserve if s.id not in in_active]
    reserve_rows = make_rows(extra)
    order = reserve_order([r["sample_id"] for r in reserve_rows], initial_sr, sampling, seed)
    tasks = {s.id: task_of(s) for s in extra}
    sampler = DynamicSampler(
        list(rows) + reserve_rows, active, order, seed=seed,
        probe=qa_probe(policy, index, cfg.max_completion_length, cfg.temperature) if ds.probe_rollouts else None,
        probe_rollouts=ds.probe_rollouts, max_tries=ds.max_tries, on_drop=tracker.mark,
        on_refill=lambda sid: tracker.add(sid, initial_sr.get(sid, 0.0), tasks.get(sid, "")))
    return streaming_dataset(sampler), DynamicSamplingCallback(sampler, recorder)
