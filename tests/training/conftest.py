"""Fixtures of the training tests: small synthetic QA samples (PIL squares) and a tiny metaloop recipe."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

#: key=value overrides of a metaloop that runs in a few seconds on the tiny model.
TINY_OVERRIDES = [
    "loops=1", "threads=1", "report_to=[]", "model.build_tiny=tiny",
    "data.generator=tests.training.synthetic:generate", "data.n_train=24", "data.n_heldout=24", "data.n_general=8",
    "data.image_size=64", "grpo.max_steps=4", "grpo.prompts_per_step=2", "grpo.num_generations=4",
    "grpo.max_completion_length=8", "grpo.stagnation.window=2", "sft.max_steps=3", "sft.batch_size=8", "sft.size=32",
    "sft.warmup_steps=0", "difficulty.max_new_tokens=8", "eval.max_new_tokens=8",
]


@pytest.fixture
def samples(tmp_path: Path) -> list:
    """Twelve synthetic samples (colour / count / left_of) with images on disk."""
    from tests.training.synthetic import generate

    return generate(n=12, seed=0, out_dir=str(tmp_path / "img"))
