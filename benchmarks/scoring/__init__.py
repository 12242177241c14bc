"""Official scorers per benchmark, registered by name (``scorer:`` in a task YAML)."""

from __future__ import annotations

from typing import Any

from benchmarks.scoring.base import Row, SampleScore, Scorer, TaskResult
from dppo_embodied.registry import Registry, load_entry_point

__all__ = ["SCORERS", "Row", "SampleScore", "Scorer", "TaskResult", "make_scorer"]

#: scorer name -> "module:Class".
SCORERS: Registry[type[Scorer]] = Registry("scorer")
for _name, _target in {
    "mvbench": "choice:MVBenchScorer",
    "cosmos": "choice:CosmosScorer",
    "erqa": "choice:ERQAScorer",
    "omni_spatial": "choice:OmniSpatialScorer",
    "emb_spatial": "choice:EmbSpatialScorer",
    "phyx_mc": "choice:PhyXScorer",
    "egoschema": "choice:EgoSchemaScorer",
    "egoplan": "choice:EgoPlanScorer",
    "blink": "choice:BlinkScorer",
    "where2place": "spatial:Where2PlaceScorer",
    "ref_spatial": "spatial:RefSpatialScorer",
    "robo_spatial": "spatial:RoboSpatialScorer",
    "vsibench": "spatial:VSIBenchScorer",
    "sample_metrics": "generic:SampleMetricsScorer",
    "closed_loop": "generic:ClosedLoopScorer",
}.items():
    SCORERS.register(_name, f"benchmarks.scoring.{_target}")


def make_scorer(name: str, task: str, options: dict[str, Any] | None = None) -> Scorer:
    """Instantiate a scorer by registered name or ``"module:Class"`` string."""
    cls = load_entry_point(name) if ":" in name else SCORERS.get(name)
    return cls(task, options)
