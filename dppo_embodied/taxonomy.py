"""The DPPO capability taxonomy as data: 9 evaluation dimensions and 4 coarse training groups.

Source: Pelican-VL 1.0 technical report (arXiv 2511.00108). Capabilities are referred to everywhere by their
slug (``"spatial_geometric"``); :func:`validate_capabilities` turns a user-supplied list into slugs or raises a
:class:`~dppo_embodied.errors.DataError` that lists the valid ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from dppo_embodied.errors import DataError


@dataclass(frozen=True)
class Capability:
    """One of the 9 dimensions.

    Attributes:
        slug: stable identifier used in data files and reports.
        name: display name, as in the paper.
        group: slug of the coarse training-data group it belongs to.
        description: one line a tagger (human or VLM) can use.
    """

    slug: str
    name: str
    group: str
    description: str


CAPABILITIES: tuple[Capability, ...] = (
    Capability("physical_causal", "Physical & Causal", "physical_spatial_numerical",
               "predict physical outcomes and causes: falling, collisions, support, pushing"),
    Capability("perception_grounding", "Perception & Grounding", "perception_grounding_consistency",
               "recognise attributes and locate the referred object in the image"),
    Capability("quantitative_numerical", "Quantitative & Numerical", "physical_spatial_numerical",
               "count objects, estimate distances, sizes and other quantities"),
    Capability("spatial_geometric", "Spatial & Geometric", "physical_spatial_numerical",
               "relations left/right, front/behind, near/far, geometry from a viewpoint"),
    Capability("temporal_sequential", "Temporal & Sequential", "temporal_functional_scene",
               "order of events over frames or time, what changed, what happened first"),
    Capability("affordance_function", "Affordance & Function", "temporal_functional_scene",
               "where and how an object can be grasped, placed or used"),
    Capability("multi_object_consistency", "Multi-Object & Scene Consistency", "perception_grounding_consistency",
               "keep track of several objects and their consistent identities across views"),
    Capability("scene_action_understanding", "Scene & Action Understanding", "temporal_functional_scene",
               "recognise which action was performed and whether it succeeded"),
    Capability("decision_planning", "Decision & Task Planning", "decision_planning",
               "choose the next action or an ordered plan that reaches a goal"),
)

#: The four coarse training-data groups: slug -> display name.
GROUPS: dict[str, str] = {
    "physical_spatial_numerical": "Physical, Spatial & Numerical Reasoning",
    "perception_grounding_consistency": "Perception, Grounding & Multi-Object Consistency",
    "temporal_functional_scene": "Temporal, Functional & Scene Understanding",
    "decision_planning": "Decision Making & Task Planning",
}

BY_SLUG: dict[str, Capability] = {c.slug: c for c in CAPABILITIES}
SLUGS: tuple[str, ...] = tuple(BY_SLUG)
_BY_NAME: dict[str, str] = {c.name.lower(): c.slug for c in CAPABILITIES}


def capability(slug_or_name: str) -> Capability:
    """Look a capability up by slug or display name (case-insensitive).

    >>> capability("Spatial & Geometric").slug
    'spatial_geometric'
    """
    key = slug_or_name.strip()
    slug = key if key in BY_SLUG else _BY_NAME.get(key.lower(), key.lower().replace(" ", "_"))
    if slug not in BY_SLUG:
        raise DataError(f"unknown capability {slug_or_name!r}; valid: {', '.join(SLUGS)}")
    return BY_SLUG[slug]


def validate_capabilities(values: Iterable[str]) -> list[str]:
    """Return the slugs of ``values`` (order kept, duplicates dropped) or raise naming the bad one."""
    out: list[str] = []
    for v in values:
        slug = capability(v).slug
        if slug not in out:
            out.append(slug)
    return out


def group_of(slug: str) -> str:
    """Coarse-group slug of a capability slug."""
    return capability(slug).group
