"""What each SFT phase trains on, per run mode, with every SFT target paid through the teacher ledger.

* ``dppo`` (and the ReLIFT-style preset): D_weak = verified teacher targets for the diagnosed failures (closed-loop
  failures: verified expert demonstrations); D_assoc = pool samples of the weak capabilities plus freshly
  synthesised ones (at most ``sft.assoc_max``), also teacher-filled and verified; D_gen = general replay; D_self =
  the loop's own rollouts that passed the reward, solved closed-loop seeds' episodes included (:func:`own_rollouts`;
  free: no teacher call; used when ``sft.self_weight`` > 0).
* ``sft_only`` / ``sft_then_rl``: the same teacher, spent on ``sft.teacher_samples`` *randomly chosen* candidates per
  SFT phase (questions and closed-loop seeds alike), within the run's teacher budget; every target paid so far is
  trained on again in later phases (it costs nothing more); plus D_gen.
* ``rft`` (rejection-sampling fine-tuning): D_self of the difficulty step only (no RL, so no diagnosis), plus
  D_gen; no teacher call.
* ``sft_pool`` (reference outside the budget, the old ``sft_only``): answer targets for the whole candidate pool and
  expert demonstrations of every closed-loop seed, plus D_gen. Its calls are counted too (one per sample).

General replay is pre-existing data shared by every variant and is never charged. See
:mod:`training.algorithm.teacher_budget` for the accounting and docs/ablation.md for why the axes are drawn this way.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dppo_embodied.io import read_json
from dppo_embodied.types import EmbodiedSample, load_samples, write_samples
from training.algorithm import data_sources
from training.algorithm.data_sources_config import DataSettings
from training.algorithm.diagnosis import Diagnosis
from training.algorithm.difficulty import table_from_json
from training.algorithm.sample_io import MediaLoader, loadable, oracle_target, task_of
from training.algorithm.teacher import Teacher, make_teacher
from training.algorithm.teacher_budget import TeacherLedger
from training.algorithm.teacher_config import TeacherSettings
from training.runs.distributed import barrier, broadcast, is_main

logger = logging.getLogger(__name__)


@dataclass
class SFTSources:
    """The three sources of one SFT phase and what they cost.

    Attributes:
        weak: (sample or ready closed-loop row, verified target) pairs.
        assoc: (sample, verified target) pairs.
        info: counts for ``state.json``.
        own: D_self, (sample, the policy's own verified rollout) pairs (diagnosed and ``self`` sources).
    """

    weak: list[tuple[Any, str]]
    assoc: list[tuple[Any, str]]
    info: dict[str, Any]
    own: list[tuple[Any, str]] = field(default_factory=list)


def _demos(episodes: Sequence[EmbodiedSample], data: DataSettings, ledger: TeacherLedger) -> list[tuple[Any, str]]:
    """Verified expert demonstrations of closed-loop seeds, one call per demonstrated step (within budget).

    A seed demonstrated before is reused free of charge (its id is kept in the ledger).
    """
    if not episodes:
        return []
    from training.algorithm.env_rollouts import oracle_demos

    out: list[tuple[Any, str]] = []
    for s in episodes:
        steps = oracle_demos([s], data.env_max_steps, data.env_oracle, style=data.env_prompt)
        if s.id not in ledger.targets:
            if ledger.charge(len(steps)) < len(steps):
                break
            ledger.targets[s.id] = "demo" if steps else None
        out += steps
    return out


def _verified(ledger: TeacherLedger, teacher: Teacher, samples: Sequence[EmbodiedSample],
              votes: int) -> list[tuple[EmbodiedSample, str]]:
    outs = ledger.fill(teacher, samples, votes)
    by_id = {s.id: s for s in samples}
    return [(by_id[o.sample_id], o.target) for o in outs if o.target]


def select_failures(failures: Sequence[EmbodiedSample], sr: dict[str, float], limit: int,
                    seed: int = 0) -> list[EmbodiedSample]:
    """At most ``limit`` failures (0 = all): lowest post-RL SR first, taking the tasks in turn (round robin).

    The teacher budget goes to the hardest failures, spread over every weak task rather than the largest one.
    """
    if not limit or len(failures) <= limit:
        return list(failures)
    rng = random.Random(seed)
    tie = {s.id: rng.random() for s in failures}
    by_task: dict[str, list[EmbodiedSample]] = {}
    for s in sorted(failures, key=lambda s: (sr.get(s.id, 0.0), tie[s.id])):
        by_task.setdefault(task_of(s), []).append(s)
    queues = [by_task[t] for t in sorted(by_task)]
    out: list[EmbodiedSample] = []
    while len(out) < limit:
        for q in queues:
            if q and len(out) < limit:
                out.append(q.pop(0))
    return out


def dppo_sources(data: DataSettings, tc: TeacherSettings, weak_max: int, assoc_max: int,
                 failures: Sequence[EmbodiedSample], ep_failures: Sequence[EmbodiedSample],
                 assoc: Sequence[EmbodiedSample], teacher: Teacher, ledger: TeacherLedger,
                 loader: MediaLoader, seed: int, sr: dict[str, float] | None = None) -> SFTSources:
    """D_weak and D_assoc of a DPPO SFT phase (failures first: they get the budget before D_assoc).

    ``weak_max`` (``sft.weak_max``) caps the question failures sent to the teacher (:func:`select_failures`, by
    post-RL ``sr``); ``assoc_max`` (``sft.assoc_max``) the D_assoc samples, drawn at random (0 = no cap).
    """
    votes = tc.k_vote
    failures = select_failures(failures, sr or {}, weak_max, seed)
    weak = _verified(ledger, teacher, failures, votes)
    n_weak_q = len(weak)
    weak += _demos(ep_failures, data, ledger)
    assoc = loadable(assoc, loader)
    if assoc_max and len(assoc) > assoc_max:
        assoc = random.Random(seed).sample(list(assoc), assoc_max)
    assoc_items = _verified(ledger, teacher, assoc, votes)
    return SFTSources(weak, assoc_items, {"d_weak": len(weak), "verified": n_weak_q, "asked": len(failures),
                                          "d_assoc": len(assoc_items), "teacher_calls": ledger.spent})


def random_sources(data: DataSettings, tc: TeacherSettings, pool: Sequence[EmbodiedSample],
                   episodes: Sequence[EmbodiedSample],
                   teacher: Teacher, ledger: TeacherLedger, loader: MediaLoader, seed: int,
                   n_new: int) -> SFTSources:
    """``sft_only`` / ``sft_then_rl``: teacher targets for ``n_new`` random unpaid candidates + all paid so far."""
    rng = random.Random(seed)
    unpaid = [s for s in [*pool, *episodes] if s.id not in ledger.targets]
    chosen = rng.sample(unpaid, min(n_new, len(unpaid)))
    q = loadable([s for s in chosen if not s.metadata.get("env_id")], loader)
    _verified(ledger, teacher, q, tc.k_vote)
    _demos([s for s in chosen if s.metadata.get("env_id")], data, ledger)
    paid = ledger.verified()
    by_id = {s.id: s for s in pool}
    weak: list[tuple[Any, str]] = [(by_id[i], t) for i, t in paid.items() if i in by_id]
    weak += _demos([s for s in episodes if paid.get(s.id) == "demo"], data, ledger)  # already paid: free
    return SFTSources(weak, [], {"d_weak": len(weak), "new_requests": len(chosen), "teacher_calls": ledger.spent})


def pool_sources(data: DataSettings, tc: TeacherSettings, pool: Sequence[EmbodiedSample],
                 episodes: Sequence[EmbodiedSample],
                 ledger: TeacherLedger, loader: MediaLoader) -> SFTSources:
    """``sft_pool`` reference: oracle targets for the whole pool (+ every seed's demonstration), one call each."""
    items: list[tuple[Any, str]] = []
    for s in loadable(pool, loader):
        if s.id not in ledger.targets:
            ledger.spent += 1
            ledger.targets[s.id] = oracle_target(s, tc.with_reasoning)
        items.append((s, ledger.targets[s.id] or ""))
    unlimited = TeacherLedger(spent=ledger.spent, targets=ledger.targets)
    items += _demos(episodes, data, unlimited)
    ledger.spent = unlimited.spent
    return SFTSources(items, [], {"d_weak": len(items), "teacher_calls": ledger.spent})


def own_rollouts(out: Path, k: int, diag: Diagnosis, pool: Sequence[EmbodiedSample], loader: MediaLoader,
                 episodes: Sequence[EmbodiedSample] = (), data: DataSettings | None = None) -> list[tuple[Any, str]]:
    """D_self of loop ``k``: one verified rollout of the policy's own for every candidate it solved this loop.

    The diagnosis's (post-RL) rollout where it re-rolled the sample, else the difficulty step's (pre-RL) one, so the
    candidates the buffer left out as trivial (solved every time) count too. Free: the reward verified them. A
    solved closed-loop seed (``episodes``, with ``data`` for the episode length and prompt style) gives the steps of
    its successful episode, replayed from the seed (:func:`~training.algorithm.env_rollouts.replayed_demos`), so a
    task the policy has mastered stays in the mix after it leaves D_weak.
    """
    table = table_from_json(read_json(out / "sr" / f"k{k}.json", {}) or {})
    texts = {i: r.success_text for i, r in table.items() if r.success_text} | diag.verified
    own: list[tuple[Any, str]] = [(s, texts[s.id]) for s in loadable([s for s in pool if s.id in texts], loader)]
    solved = [(s, texts[s.id]) for s in episodes if s.id in texts]
    if solved and data is not None:
        from training.algorithm.env_rollouts import replayed_demos

        own += replayed_demos(solved, data.env_max_steps, style=data.env_prompt)
    return own


def ledger_path(out: Path) -> Path:
    """Where a run keeps its teacher ledger."""
    return out / "teacher_ledger.json"


def gather(source: str, k: int, out: Path, data: DataSettings, tc: TeacherSettings, sc: Any,
           pool: Sequence[EmbodiedSample], episodes: Sequence[EmbodiedSample], loader: MediaLoader,
           ledger: TeacherLedger, *, seed: int, src_seed: int) -> tuple[SFTSources, TeacherLedger, int]:
    """The weak and associated sources of loop ``k``'s SFT phase for ``source`` (``diagnosed``: the weakness
    report's failures and weak capabilities, plus ``sc.synthesize_n`` fresh samples of those capabilities when
    ``sc.synthesize_assoc``; ``random``; ``pool``; ``self``: D_self of the difficulty step only). Rank 0 asks the
    teacher and synthesises; every rank gets the same sources and ledger.

    Args:
        sc: the SFT settings (``weak_max``, ``assoc_max``, ``teacher_samples``, ``synthesize_assoc``,
            ``synthesize_n``).
        pool: the loop's QA candidates; ``episodes``: its closed-loop samples.
        seed: the run seed (the teacher's); ``src_seed``: the draw of which failures / candidates get targets.

    Returns:
        ``(sources, ledger after paying for them, number of synthesised samples)``.
    """
    synth: list[EmbodiedSample] = []
    failures: list[EmbodiedSample] = []
    ep_failures: list[EmbodiedSample] = []
    assoc: list[EmbodiedSample] = []
    sr: dict[str, float] = {}
    if source == "diagnosed":
        diag = Diagnosis.from_json(read_json(out / "reports" / f"weakness_k{k}.json", {}))
        sr = diag.sr
        failed, weak_caps = set(diag.failures), set(diag.weak_capabilities)
        synth_file = out / "data" / f"synth_k{k}.jsonl"
        if sc.synthesize_assoc and weak_caps and is_main():
            synth = data_sources.synthesize(data, sorted(weak_caps), sc.synthesize_n, k, out / "data" / f"synth_k{k}")
            write_samples(synth, synth_file)
        barrier()
        if sc.synthesize_assoc and weak_caps and synth_file.is_file():
            synth = load_samples(synth_file)[0]
        assoc = [s for s in pool if weak_caps & set(s.capabilities) and s.id not in failed] + synth
        failures = [s for s in pool if s.id in failed]
        ep_failures = [s for s in episodes if s.id in failed]
    src = None
    if is_main():  # one process asks the teacher (a remote server must not get every request once per rank)
        if source == "diagnosed":
            teacher = make_teacher(tc, loader, seed=seed)
            src = dppo_sources(data, tc, sc.weak_max, sc.assoc_max, failures, ep_failures, assoc, teacher, ledger,
                               loader, src_seed, sr=sr)
            if sc.self_weight > 0:  # D_self: free, so after the teacher's sources
                src.own = own_rollouts(out, k, diag, pool, loader, episodes, data)
                steps = sum(isinstance(row, dict) for row, _ in src.own)  # closed-loop rows are ready dicts
                src.info |= {"d_self": len(src.own), "d_self_episode_steps": steps}
        elif source == "pool":
            src = pool_sources(data, tc, pool, episodes, ledger, loader)
        elif source == "self":
            own = own_rollouts(out, k, Diagnosis(), pool, loader, episodes, data)
            src = SFTSources([], [], {"d_self": len(own), "teacher_calls": ledger.spent}, own=own)
        else:
            src = random_sources(data, tc, pool, episodes, make_teacher(tc, loader, seed=seed), ledger, loader,
                                 src_seed, sc.teacher_samples)
    src, ledger = broadcast((src, ledger))
    return src, ledger, len(synth)
