"""A tiny procedural QA generator for training tests (coloured squares on grey), with envs.qa's signature.

Templates: ``colour`` (mcq, perception_grounding), ``count`` (count, quantitative_numerical) and ``left_of``
(yes_no, spatial_geometric). Suite ``replay`` yields only ``colour`` questions (the "general" set). Every sample
carries oracle reasoning and a ``horizon_s`` so the horizon filter can be tested.
"""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image

from dppo_embodied.types import AnswerType, EmbodiedSample

COLOURS = {"red": (220, 30, 30), "green": (30, 180, 30), "blue": (30, 60, 220), "yellow": (230, 210, 30)}
TEMPLATES = {"colour": "perception_grounding", "count": "quantitative_numerical", "left_of": "spatial_geometric"}


def _scene(rng: random.Random, n: int, size: int) -> tuple[Image.Image, list[tuple[str, int]]]:
    img = Image.new("RGB", (size, size), (128, 128, 128))
    names = rng.sample(list(COLOURS), n)
    cell = size // 3
    xs = rng.sample(range(3), n)
    placed = []
    for name, col in zip(names, xs, strict=False):
        y = rng.randrange(3)
        img.paste(COLOURS[name], (col * cell + 4, y * cell + 4, col * cell + cell - 4, y * cell + cell - 4))
        placed.append((name, col))
    return img, placed


def generate(suite: str = "tabletop-qa", n: int = 10, seed: int = 0, capabilities: list[str] | None = None,
             out_dir: str | None = None, image_size: int = 64, progress: bool = False) -> list[EmbodiedSample]:
    """``n`` samples with images written under ``out_dir``."""
    rng = random.Random(seed)
    out = Path(out_dir or ".")
    out.mkdir(parents=True, exist_ok=True)
    templates = ["colour"] if suite == "replay" else list(TEMPLATES)
    if capabilities:
        templates = [t for t in templates if TEMPLATES[t] in capabilities] or templates
    samples = []
    for i in range(n):
        t = templates[i % len(templates)]
        k = 1 if t == "colour" else (2 if t == "left_of" else rng.randint(1, 3))
        img, placed = _scene(rng, k, image_size)
        sid = f"{suite}/{t}/{seed}-{i}"
        path = out / f"{sid.replace('/', '_')}.png"
        img.save(path)
        md = {"template": t, "horizon_s": float(rng.choice([10, 40, 80])), "image_size": [image_size, image_size]}
        if t == "colour":
            letters = list(COLOURS)
            s = EmbodiedSample(sid, suite, "What colour is the block?", "ABCD"[letters.index(placed[0][0])],
                               AnswerType.MCQ, images=[str(path)], options=letters, capabilities=[TEMPLATES[t]],
                               reasoning=f"The block is {placed[0][0]}.", metadata=md)
        elif t == "count":
            s = EmbodiedSample(sid, suite, "How many blocks?", k, AnswerType.COUNT, images=[str(path)],
                               capabilities=[TEMPLATES[t]], reasoning=f"I see {k} blocks.", metadata=md)
        else:
            (a, ca), (b, cb) = placed
            ans = "yes" if ca < cb else "no"
            s = EmbodiedSample(sid, suite, f"Is the {a} block left of the {b} block?", ans, AnswerType.YES_NO,
                               images=[str(path)], capabilities=[TEMPLATES[t]],
                               reasoning=f"The {a} block is {'left' if ca < cb else 'right'} of the {b} block.",
                               metadata=md)
        samples.append(s)
    return samples
