"""Diagnosis between the RL and SFT phases: re-roll, collect failures, and report weaknesses by capability.

[TR]: 4 rollouts per RL sample, rule-based filtering, then injection into the next SFT stage. Here the RL buffer
and the weakness pool are re-rolled with the post-RL policy (T sampled rollouts each, scored by ``score_sample``);
a sample is a *failure* when its new SR is below ``failure_sr`` (default 1/2: it fails more often than not).
The rollouts that pass the rule-based reward are kept too (one text per solved sample): they are
D_RL^{k+1/2} of the paper's SFT objective, verified targets that cost no teacher call (``sft.self_weight``).
The weakness report groups samples by capability tag (multi-label: a sample counts for each of its tags) with
failure counts and rates; the *weak capabilities* are those with failures, most failures first — they drive
D_assoc retrieval and synthesis.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dppo_embodied.io import atomic_write_json, atomic_write_text
from dppo_embodied.taxonomy import BY_SLUG
from dppo_embodied.types import EmbodiedSample
from training.algorithm.difficulty import Roller, SRRecord, estimate_success_rates, failure_summary

logger = logging.getLogger(__name__)


@dataclass
class CapabilityStats:
    """Diagnosis numbers of one capability."""

    n: int = 0
    failures: int = 0
    mean_sr: float = 0.0

    @property
    def fail_rate(self) -> float:
        """Failures / samples."""
        return self.failures / self.n if self.n else 0.0


@dataclass
class Diagnosis:
    """The outcome of a diagnosis.

    Attributes:
        failures: ids of failed samples.
        sr: post-RL SR of every diagnosed sample.
        by_capability: per-capability statistics.
        weak_capabilities: capabilities with failures, most failures first.
        rollout_failures: rollouts that failed for good on the engine (``failed_rollouts``, ``failure_reasons``).
        verified: ``sample id -> text`` of the first rollout that passed the reward, for every solved sample whose
            rollouts kept their texts (question samples).
    """

    failures: list[str] = field(default_factory=list)
    sr: dict[str, float] = field(default_factory=dict)
    by_capability: dict[str, CapabilityStats] = field(default_factory=dict)
    weak_capabilities: list[str] = field(default_factory=list)
    rollout_failures: dict[str, Any] = field(default_factory=dict)
    verified: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "failures": self.failures,
            "sr": self.sr,
            "by_capability": {k: {**asdict(v), "fail_rate": v.fail_rate} for k, v in self.by_capability.items()},
            "weak_capabilities": self.weak_capabilities,
            "rollout_failures": self.rollout_failures,
            "verified": self.verified,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Diagnosis:
        """Inverse of :meth:`to_json`."""
        caps = {k: CapabilityStats(n=v["n"], failures=v["failures"], mean_sr=v["mean_sr"])
                for k, v in d.get("by_capability", {}).items()}
        return cls(list(d.get("failures", [])), dict(d.get("sr", {})), caps, list(d.get("weak_capabilities", [])),
                   dict(d.get("rollout_failures", {})), dict(d.get("verified", {})))


def summarize(samples: Sequence[EmbodiedSample], table: dict[str, SRRecord], failure_sr: float) -> Diagnosis:
    """Failures and per-capability statistics from an SR table."""
    failures = [s.id for s in samples if s.id in table and table[s.id].sr < failure_sr]
    failed = set(failures)
    srs: dict[str, list[float]] = defaultdict(list)
    stats: dict[str, CapabilityStats] = {}
    for s in samples:
        if s.id not in table:
            continue
        for cap in s.capabilities or [""]:
            st = stats.setdefault(cap, CapabilityStats())
            st.n += 1
            st.failures += s.id in failed
            srs[cap].append(table[s.id].sr)
    for cap, st in stats.items():
        st.mean_sr = sum(srs[cap]) / len(srs[cap])
    weak = sorted((c for c, st in stats.items() if st.failures and c), key=lambda c: (-stats[c].failures, c))
    verified = {s.id: table[s.id].success_text for s in samples if s.id in table and table[s.id].success_text}
    return Diagnosis(failures, {i: table[i].sr for i in table}, dict(sorted(stats.items())), weak, verified=verified)


def diagnose(samples: Sequence[EmbodiedSample], qa_roller: Roller | None, rollouts: int, temperature: float,
             failure_sr: float = 0.5, episode_roller: Roller | None = None, progress: bool = True) -> Diagnosis:
    """Re-roll ``samples`` (RL buffer + weakness pool) with the current policy and summarise the failures."""
    table = estimate_success_rates(samples, qa_roller, rollouts, temperature, episode_roller=episode_roller,
                                   progress=progress, desc="diagnosis")
    d = summarize(samples, table, failure_sr)
    d.rollout_failures = failure_summary(table)
    logger.info("diagnosis: %d failures of %d; weak capabilities: %s", len(d.failures), len(samples),
                ", ".join(d.weak_capabilities) or "none")
    return d


def write_report(d: Diagnosis, folder: str | Path, loop: int) -> Path:
    """Write ``weakness_k<loop>.json`` and a Markdown table ``weakness_k<loop>.md``; return the Markdown path."""
    folder = Path(folder)
    atomic_write_json(folder / f"weakness_k{loop}.json", d.to_json())
    lines = [f"# Weakness report, loop {loop}", "",
             f"{len(d.failures)} failures of {len(d.sr)} diagnosed samples.", "",
             "| capability | samples | failures | fail rate | mean SR |", "|---|---:|---:|---:|---:|"]
    for cap, st in sorted(d.by_capability.items(), key=lambda kv: -kv[1].failures):
        name = BY_SLUG[cap].name if cap in BY_SLUG else (cap or "(untagged)")
        lines.append(f"| {name} | {st.n} | {st.failures} | {st.fail_rate:.2f} | {st.mean_sr:.2f} |")
    path = folder / f"weakness_k{loop}.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
