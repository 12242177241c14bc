"""Per-row seeded sampling (:mod:`inference.sampling`): a row's token depends on its own generator only."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from inference.sampling import SeededSampler, choice_seed, row_generators  # noqa: E402


def test_a_rows_token_depends_on_its_seed_only() -> None:
    scores = torch.randn(3, 50, generator=torch.Generator().manual_seed(0))
    picks = []
    for seeds in ([11, 12, 13], [11, 99, None], [11, 12, 13]):
        out = SeededSampler(row_generators(seeds, 1), temperature=1.0)(torch.zeros(3, 1, dtype=torch.long), scores)
        assert (torch.isfinite(out).sum(-1) == 1).all()
        picks.append(out.argmax(-1).tolist())
    assert picks[0] == picks[2] and picks[1][0] == picks[0][0]
    # the same seed in another row and batch gives the same draw sequence
    other = SeededSampler(row_generators([5, 11], 1), 1.0)(torch.zeros(2, 1, dtype=torch.long), scores[[1, 0]])
    assert other.argmax(-1).tolist()[1] == picks[0][0]


def test_choices_get_their_own_seeds_and_top_p_keeps_the_nucleus() -> None:
    assert choice_seed(7, 0) == 7 and len({choice_seed(7, k) for k in range(4)}) == 4
    assert len(row_generators([7, None], 3)) == 6
    scores = torch.tensor([[4.0, 3.9, -2.0, -3.0]] * 64)
    out = SeededSampler(row_generators(list(range(64)), 1), temperature=1.0, top_p=0.5)(
        torch.zeros(64, 1, dtype=torch.long), scores)
    assert set(out.argmax(-1).tolist()) == {0}  # token 0 alone holds >= half the mass
    out = SeededSampler(row_generators(list(range(64)), 1), temperature=1.0, top_p=0.9)(
        torch.zeros(64, 1, dtype=torch.long), scores)
    assert set(out.argmax(-1).tolist()) == {0, 1}  # the two top tokens hold 0.99; the tail is cut
    assert out.max().item() == 0.0 and out.min().item() == -math.inf
    with pytest.raises(ValueError, match="temperature"):
        SeededSampler([], temperature=0.0)
    with pytest.raises(ValueError, match="rows"):
        SeededSampler(row_generators([1], 1), 1.0)(torch.zeros(2, 1, dtype=torch.long), scores[:2])
