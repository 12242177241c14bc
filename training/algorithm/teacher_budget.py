"""The teacher-call budget: every SFT target costs one teacher (or expert-demonstration) call.

The ablation protocol (docs/ablation.md) compares variants on two budget axes, compute and teacher calls. As in the
paper, SFT targets are distilled reasoning + answer from a teacher, so each target a run trains on was paid for
with a teacher call (``k_vote`` calls when the teacher votes); answers used only as verifiable RL rewards cost
nothing, and neither does the general replay set (pre-existing data, the same for every variant).

:class:`TeacherLedger` sits between the metaloop and any :class:`~training.algorithm.teacher.Teacher`:

* it counts calls (``spent``) and refuses new ones beyond ``budget`` (0 = unlimited), in request order;
* it caches every answer by sample id, so a sample paid once is reused in later loops for free (a failure the
  teacher got wrong stays unfilled: asking again would cost again, and we do not);
* closed-loop expert demonstrations are charged one call per demonstrated step (:meth:`charge`).

Its state (``spent``, ``budget``, cached targets) is saved with the run, so a resumed run keeps its account.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dppo_embodied.types import EmbodiedSample
from training.algorithm.teacher import Teacher, TeacherOutput

logger = logging.getLogger(__name__)


@dataclass
class TeacherLedger:
    """Counts, caches and limits teacher calls.

    Attributes:
        budget: maximum calls for the run (0 = unlimited).
        spent: calls made so far.
        targets: sample id -> verified target (None: the teacher's answer did not verify).
        refused: requests turned away because the budget was spent.
    """

    budget: int = 0
    spent: int = 0
    targets: dict[str, str | None] = field(default_factory=dict)
    refused: int = 0

    @property
    def remaining(self) -> float:
        """Calls left (``inf`` without a budget)."""
        return float("inf") if self.budget <= 0 else max(0, self.budget - self.spent)

    def fill(self, teacher: Teacher, samples: Sequence[EmbodiedSample], votes: int = 1) -> list[TeacherOutput]:
        """Teacher outputs for ``samples``: cached ones free, new ones paid ``votes`` calls each, within budget.

        Samples beyond the budget get no target (``votes = 0``) and are counted in :attr:`refused`.
        """
        new = [s for s in {s.id: s for s in samples}.values() if s.id not in self.targets]
        affordable = new if self.remaining == float("inf") else new[:int(self.remaining // max(1, votes))]
        if len(affordable) < len(new):
            self.refused += len(new) - len(affordable)
            logger.info("teacher budget: %d of %d new requests refused (%d of %d calls spent)",
                        len(new) - len(affordable), len(new), self.spent, self.budget)
        if affordable:
            for out in teacher.fill(affordable):
                self.targets[out.sample_id] = out.target
            self.spent += len(affordable) * max(1, votes)
        return [TeacherOutput(s.id, self.targets.get(s.id), votes if s.id in self.targets else 0,
                              int(self.targets.get(s.id) is not None)) for s in samples]

    def charge(self, calls: int) -> int:
        """Charge ``calls`` expert-demonstration calls (within budget); returns how many were granted."""
        granted = int(min(calls, self.remaining))
        self.refused += calls - granted
        self.spent += granted
        return granted

    def verified(self) -> dict[str, str]:
        """Every paid sample with a verified target."""
        return {k: v for k, v in self.targets.items() if v is not None}

    def to_json(self) -> dict[str, Any]:
        """JSON form (saved with the run)."""
        return {"budget": self.budget, "spent": self.spent, "targets": self.targets, "refused": self.refused}

    @classmethod
    def from_json(cls, d: dict[str, Any] | None, budget: int = 0) -> TeacherLedger:
        """Inverse of :meth:`to_json`; a fresh ledger with ``budget`` when ``d`` is empty."""
        if not d:
            return cls(budget=budget)
        return cls(budget=int(d.get("budget", budget)), spent=int(d.get("spent", 0)),
                   targets=dict(d.get("targets", {})), refused=int(d.get("refused", 0)))
