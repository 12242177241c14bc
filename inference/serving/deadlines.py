"""Per-request deadlines inside ``transformers`` generation: each row of a batch stops when its request's time is up.

A :class:`DeadlineStop` is a ``transformers`` stopping criterion evaluated after every decoding step. It returns one
flag per row, so a request whose deadline passes is cut while the other requests of the batch go on. It also records
which rows it cut (rows that had already ended with an end-of-sequence or padding token are not counted), so the
server can answer ``finish_reason: "length"`` for exactly those choices.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from transformers import StoppingCriteria


class DeadlineStop(StoppingCriteria):
    """Stop each row at its own deadline.

    Args:
        row_deadlines: one ``time.monotonic()`` deadline per row (``math.inf``: none).
        finish_ids: token ids that end a sequence by themselves (end-of-sequence ids and the padding id).
        clock: the clock the deadlines refer to.
    """

    def __init__(self, row_deadlines: Sequence[float], finish_ids: Iterable[int],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.deadlines = list(row_deadlines)
        self.finish_ids = torch.tensor(sorted({int(i) for i in finish_ids}), dtype=torch.long)
        self.clock = clock
        self.done = [False] * len(self.deadlines)
        self.cut = [False] * len(self.deadlines)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
        """One flag per row: ``True`` once the row's deadline has passed."""
        ended = torch.isin(input_ids[:, -1], self.finish_ids.to(input_ids.device)).tolist()
        now = self.clock()
        flags = []
        for i, deadline in enumerate(self.deadlines):
            if ended[i] and not self.cut[i]:
                self.done[i] = True
            expired = now >= deadline
            if expired and not self.done[i]:
                self.cut[i] = True
            flags.append(expired)
        return torch.tensor(flags, dtype=torch.bool, device=input_ids.device)  # type: ignore[return-value]


def finish_token_ids(model: Any, tokenizer: Any) -> set[int]:
    """The ids that end a generated sequence: the generation config's and tokenizer's EOS ids, and the pad id."""
    ids: set[int] = set()
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for v in (eos, tokenizer.eos_token_id, tokenizer.pad_token_id):
        if isinstance(v, int):
            ids.add(v)
        elif isinstance(v, (list, tuple)):
            ids.update(int(x) for x in v)
    return ids
