"""The capability taxonomy: 9 dimensions, 4 groups, lookups by slug or display name."""

import pytest

from dppo_embodied.errors import DataError
from dppo_embodied.taxonomy import CAPABILITIES, GROUPS, capability, group_of, validate_capabilities


def test_nine_dimensions_four_groups() -> None:
    assert len(CAPABILITIES) == 9
    assert len(GROUPS) == 4
    assert {c.group for c in CAPABILITIES} == set(GROUPS)
    assert CAPABILITIES[0].name == "Physical & Causal"


def test_lookup_and_validation() -> None:
    assert capability("Decision & Task Planning").slug == "decision_planning"
    assert capability("spatial_geometric").name == "Spatial & Geometric"
    assert group_of("multi_object_consistency") == "perception_grounding_consistency"
    assert validate_capabilities(["Spatial & Geometric", "spatial_geometric", "physical_causal"]) == [
        "spatial_geometric", "physical_causal"]
    with pytest.raises(DataError, match="valid: physical_causal"):
        capability("astrology")
