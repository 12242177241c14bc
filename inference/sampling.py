"""Per-row seeded sampling inside ``transformers`` generation: what lets ``dppo serve`` honour the OpenAI ``seed``.

``transformers`` samples every row of a batch from one torch generator, so a request's sampled answer depends on
the requests it was batched with. :class:`SeededSampler` gives each row its own generator: it is the last logits
processor of a *greedy* ``generate`` call, applies temperature and nucleus (top-p) itself, draws the row's token
from the row's generator and leaves only that token finite, which the greedy step then takes. A request sent
with one seed therefore gets the same answer whatever else is in its batch (up to float differences in the
logits of differently padded batches), and its ``n`` choices get ``n`` different seeds (:func:`choice_seed`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from transformers import LogitsProcessor

from dppo_embodied.generation import request_seed

__all__ = ["SeededSampler", "choice_seed", "row_generators"]


def choice_seed(seed: int, choice: int) -> int:
    """The seed of choice ``choice`` of a request sent with ``seed`` (choice 0 uses the request's seed itself)."""
    return seed if choice == 0 else request_seed(seed, f"choice{choice}")


def row_generators(seeds: Sequence[int | None], n: int, device: Any = "cpu") -> list[torch.Generator]:
    """One generator per generated row (request-major, ``n`` choices each, the order of ``num_return_sequences``).

    A request without a seed draws its rows' seeds from torch's global generator (so ``torch.manual_seed``
    still governs unseeded requests).
    """
    out = []
    for seed in seeds:
        for k in range(n):
            s = choice_seed(seed, k) if seed is not None else int(torch.randint(0, 2**62, ()).item())
            g = torch.Generator(device=device)
            g.manual_seed(s % 2**64)
            out.append(g)
    return out


class SeededSampler(LogitsProcessor):
    """Sample each row's next token from its own generator; every other logit becomes ``-inf``.

    Args:
        generators: one per row of the batch.
        temperature: > 0.
        top_p: nucleus mass in (0, 1].
    """

    def __init__(self, generators: Sequence[torch.Generator], temperature: float, top_p: float = 1.0) -> None:
        if temperature <= 0:
            raise ValueError(f"seeded sampling needs temperature > 0, got {temperature}")
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        self.generators, self.temperature, self.top_p = list(generators), temperature, top_p

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if scores.shape[0] != len(self.generators):
            raise ValueError(f"{scores.shape[0]} rows but {len(self.generators)} generators")
        logits = scores.float() / self.temperature
        if self.top_p < 1.0:  # keep the smallest set of most likely tokens whose mass reaches top_p
            sorted_logits, order = logits.sort(dim=-1, descending=True)
            sorted_probs = sorted_logits.softmax(-1)
            mass_before = sorted_probs.cumsum(-1) - sorted_probs
            drop_sorted = mass_before >= self.top_p
            drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
            logits = logits.masked_fill(drop, -math.inf)
        probs = logits.softmax(-1)
        picks = torch.stack([torch.multinomial(probs[r], 1, generator=g)[0]
                             for r, g in enumerate(self.generators)])
        out = torch.full_like(scores, -math.inf)
        out.scatter_(1, picks.unsqueeze(1), 0.0)
        return out
