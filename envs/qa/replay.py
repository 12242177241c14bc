"""The "replay" suite: plain, non-embodied perception questions on flat drawings, for forgetting checks.

Images are 2-D drawings (PIL) of 1-4 coloured shapes (square, circle, triangle) on a light background; the answer
comes from the drawing's own description, so it is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from dppo_embodied.types import AnswerType, EmbodiedSample
from envs.qa.common import QAContext

FLAT_COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30), "green": (30, 170, 50), "blue": (30, 70, 220), "yellow": (235, 205, 20),
    "purple": (140, 40, 190), "orange": (250, 130, 0), "black": (20, 20, 20),
}
FLAT_SHAPES = ("square", "circle", "triangle")
PG, QN, SG = "perception_grounding", "quantitative_numerical", "spatial_geometric"


@dataclass
class Flat:
    """One drawn shape: centre and size in pixels."""

    color: str
    shape: str
    cx: float
    cy: float
    size: float

    @property
    def name(self) -> str:
        return f"{self.color} {self.shape}"


def _draw(ctx: QAContext, lo: int = 1, hi: int = 4, palette: tuple[str, ...] | None = None) -> tuple[list[Flat], str]:
    w, h = ctx.scene.width, ctx.scene.height
    rng = ctx.rng
    n = int(rng.integers(lo, hi + 1))
    pairs = [(c, s) for c in (palette or FLAT_COLORS) for s in FLAT_SHAPES]
    chosen = [pairs[int(k)] for k in rng.choice(len(pairs), size=min(n, len(pairs)), replace=False)]
    shapes: list[Flat] = []
    for c, s in chosen:
        for _ in range(100):
            size = float(rng.uniform(0.12, 0.26) * min(w, h))
            cx, cy = float(rng.uniform(size, w - size)), float(rng.uniform(size, h - size))
            if all(np.hypot(cx - o.cx, cy - o.cy) > size + o.size + 2 for o in shapes):
                shapes.append(Flat(c, s, cx, cy, size))
                break
    bg = tuple(int(v) for v in rng.integers(200, 246, size=3))
    return shapes, ctx.save_image(np.asarray(_paint(Image.new("RGB", (w, h), bg), shapes)))


def _paint(img: Image.Image, shapes: list[Flat], fill: int | None = None) -> Image.Image:
    """Draw ``shapes`` on ``img`` in their colours (or all with ``fill``, e.g. 255 for a mask)."""
    dr = ImageDraw.Draw(img)
    for f in shapes:
        col = FLAT_COLORS[f.color] if fill is None else fill
        box = (f.cx - f.size, f.cy - f.size, f.cx + f.size, f.cy + f.size)
        if f.shape == "square":
            dr.rectangle(box, fill=col)
        elif f.shape == "circle":
            dr.ellipse(box, fill=col)
        else:
            dr.polygon([(f.cx, f.cy - f.size), (f.cx - f.size, f.cy + f.size), (f.cx + f.size, f.cy + f.size)],
                       fill=col)
    return img


def _listing(shapes: list[Flat]) -> str:
    return ", ".join(f"a {f.name}" for f in shapes)


def flat_color(ctx: QAContext) -> EmbodiedSample | None:
    """What colour is the <shape>? (mcq; the shape is unique in the drawing)"""
    shapes, img = _draw(ctx)
    kinds = [f.shape for f in shapes]
    unique = [s for s in FLAT_SHAPES if kinds.count(s) == 1]
    if not unique:
        return None
    f = shapes[kinds.index(ctx.pick(unique))]
    opts, ans = ctx.mcq(f.color, list(FLAT_COLORS))
    return ctx.sample("flat_color", [PG], f"What colour is the {f.shape}?", ans, AnswerType.MCQ, [img],
                      f"The image shows {_listing(shapes)}; the {f.shape} is {f.color}.", opts)


def flat_count(ctx: QAContext) -> EmbodiedSample | None:
    """How many shapes are in the image? (count)"""
    shapes, img = _draw(ctx)
    return ctx.sample("flat_count", [QN], "How many shapes are in the image?", len(shapes), AnswerType.COUNT, [img],
                      f"The image shows {_listing(shapes)}; that is {len(shapes)}.")


def flat_largest(ctx: QAContext) -> EmbodiedSample | None:
    """Which shape is the largest? (mcq; sizes differ by >= 15 %)"""
    shapes, img = _draw(ctx, 2, 4)
    if len(shapes) < 2:
        return None
    order = sorted(shapes, key=lambda f: -f.size)
    if order[0].size < 1.15 * order[1].size:
        return None
    opts, ans = ctx.mcq(order[0].name, [f.name for f in order[1:]])
    return ctx.sample("flat_largest", [PG], "Which shape is the largest?", ans, AnswerType.MCQ, [img],
                      f"The {order[0].name} is clearly bigger than the {order[1].name}.", opts)


def flat_above(ctx: QAContext) -> EmbodiedSample | None:
    """Is the <A> above the <B>? (yes/no; vertical centres differ by >= 8 % of the height)"""
    shapes, img = _draw(ctx, 2, 4)
    if len(shapes) < 2:
        return None
    a, b = ctx.pick(shapes, 2)
    if abs(a.cy - b.cy) < 0.08 * ctx.scene.height:
        return None
    ans = "yes" if a.cy < b.cy else "no"
    why = f"The {a.name} is {'higher' if a.cy < b.cy else 'lower'} in the image than the {b.name}."
    return ctx.sample("flat_above", [SG], f"Is the {a.name} above the {b.name}?", ans, AnswerType.YES_NO, [img], why)


def flat_describe(ctx: QAContext) -> EmbodiedSample | None:
    """Which description matches the image? (mcq of listings)"""
    shapes, img = _draw(ctx, 1, 3)
    names = sorted(f.name for f in shapes)
    correct = " and ".join(f"a {n}" for n in names)
    dist = []
    for _ in range(6):
        k = int(ctx.rng.integers(len(names)))
        alt = list(names)
        c, s = alt[k].split()
        alt[k] = f"{ctx.pick([x for x in FLAT_COLORS if x != c])} {s}" if ctx.rng.random() < 0.5 else \
            f"{c} {ctx.pick([x for x in FLAT_SHAPES if x != s])}"
        dist.append(" and ".join(f"a {n}" for n in sorted(alt)))
    opts, ans = ctx.mcq(correct, dist)
    return ctx.sample("flat_describe", [PG], "Which description matches the image?", ans, AnswerType.MCQ, [img],
                      f"The image shows {correct}.", opts)


# ----------------------------------------------------------------- "flat-qa": verifiable tasks on grid drawings
#: colours of the flat-qa drawings (few, so that colour counts of 0-3 occur)
GRID_PALETTE = ("red", "green", "blue", "yellow")
#: cells per side of the flat-qa layout
GRID = 3


def _grid(ctx: QAContext, lo: int = 2, hi: int = 5, unique: bool = True) -> tuple[list[Flat], str]:
    """``lo``..``hi`` shapes, one per cell of a 3 x 3 grid on grey (cells line up with the model's 9 visual tokens at
    84-96 px; docs/lab/dppo-value.md).

    Args:
        unique: every colour at most once (so "the red shape" names one shape).
    """
    w, h = ctx.scene.width, ctx.scene.height
    rng = ctx.rng
    n = int(rng.integers(lo, hi + 1))
    cells = [int(c) for c in rng.choice(GRID * GRID, size=n, replace=False)]
    if unique:  # every colour at most once: "the red shape" names one shape
        n = min(n, len(GRID_PALETTE))
        cells = cells[:n]
        colors = [GRID_PALETTE[int(k)] for k in rng.choice(len(GRID_PALETTE), size=n, replace=False)]
    else:
        colors = [GRID_PALETTE[int(rng.integers(len(GRID_PALETTE)))] for _ in range(n)]
    kinds = [(c, FLAT_SHAPES[int(rng.integers(len(FLAT_SHAPES)))]) for c in colors]
    cw, ch = w / GRID, h / GRID
    shapes = [Flat(c, s, (cell % GRID + 0.5) * cw, (cell // GRID + 0.5) * ch, 0.36 * min(cw, ch))
              for cell, (c, s) in zip(cells, kinds, strict=True)]
    return shapes, ctx.save_image(np.asarray(_paint(Image.new("RGB", (w, h), (128, 128, 128)), shapes)))


def _mask(ctx: QAContext, f: Flat) -> np.ndarray:
    """Boolean pixel mask of one drawn shape (shapes never overlap)."""
    return np.asarray(_paint(Image.new("L", (ctx.scene.width, ctx.scene.height), 0), [f], fill=255)) > 0


def flat_point(ctx: QAContext) -> EmbodiedSample | None:
    """Point to the <colour> shape. (points; any point inside the shape scores, so the target is not unique)"""
    shapes, img = _grid(ctx, 1, 4)
    f = ctx.pick(shapes)
    mask = _mask(ctx, f)
    ys, xs = np.nonzero(mask)
    if len(xs) < 12:
        return None
    w, h = ctx.scene.width, ctx.scene.height
    x, y = round(float(xs.mean() + 0.5) / w, 3), round(float(ys.mean() + 0.5) / h, 3)
    if not mask[min(h - 1, int(y * h)), min(w - 1, int(x * w))]:  # a triangle's centroid lies inside; be safe
        return None
    return ctx.sample("flat_point", [PG], f"Point to the {f.color} shape. Answer with normalized (x, y) coordinates.",
                      [[x, y]], AnswerType.POINTS, [img], f"The {f.color} shape, a {f.shape}, is at about "
                      f"({x:.2f}, {y:.2f}).",
                      mask=ctx.save_mask(mask), mask_pixels=int(mask.sum()))


def flat_count_color(ctx: QAContext) -> EmbodiedSample | None:
    """How many <colour> shapes are in the image? (count; the reasoning lists them)"""
    shapes, img = _grid(ctx, 1, 4, unique=False)
    color = ctx.pick(list(GRID_PALETTE))
    hits = [f.name for f in shapes if f.color == color]
    why = f"The {color} shapes are: {', '.join(hits)}; that is {len(hits)}." if hits else f"No shape is {color}."
    return ctx.sample("flat_count_color", [QN], f"How many {color} shapes are in the image?", len(hits),
                      AnswerType.COUNT, [img], why)


def flat_left_of(ctx: QAContext) -> EmbodiedSample | None:
    """Is the <colour A> shape left of the <colour B> shape? (yes/no; different grid columns)"""
    shapes, img = _grid(ctx, 2, 4)
    a, b = ctx.pick(shapes, 2)
    if abs(a.cx - b.cx) < 1:
        return None
    ans = "yes" if a.cx < b.cx else "no"
    why = f"The {a.name} is {'further left' if a.cx < b.cx else 'further right'} in the image than the {b.name}."
    return ctx.sample("flat_left_of", [SG], f"Is the {a.color} shape to the left of the {b.color} shape?", ans,
                      AnswerType.YES_NO, [img], why)


def flat_count_all(ctx: QAContext) -> EmbodiedSample | None:
    """How many shapes are in the image? (count of 1-6 grid shapes; the reasoning lists them)"""
    shapes, img = _grid(ctx, 1, 6, unique=False)
    return ctx.sample("flat_count_all", [QN], "How many shapes are in the image?", len(shapes), AnswerType.COUNT,
                      [img], f"The shapes are: {_listing(shapes)}; that is {len(shapes)}.")


def flat_majority(ctx: QAContext) -> EmbodiedSample | None:
    """Which colour do most shapes have? (mcq over the palette; 1-5 shapes, one colour strictly most frequent)"""
    shapes, img = _grid(ctx, 1, 5, unique=False)
    counts = {c: sum(f.color == c for f in shapes) for c in GRID_PALETTE}
    top = max(counts.values())
    best = [c for c, n in counts.items() if n == top]
    if len(best) > 1:
        return None
    why = "; ".join(f"{n} {c}" for c, n in counts.items() if n) + f": most shapes are {best[0]}."
    return ctx.sample("flat_majority", [PG], "Which colour do most shapes in the image have?",
                      "ABCD"[GRID_PALETTE.index(best[0])], AnswerType.MCQ, [img], why, options=list(GRID_PALETTE))


def flat_point_one(ctx: QAContext) -> EmbodiedSample | None:
    """Point to the shape. (points; one shape in one of the 9 cells; any point inside it scores)"""
    shapes, img = _grid(ctx, 1, 1)
    f = shapes[0]
    mask = _mask(ctx, f)
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    x, y = round(float(xs.mean() + 0.5) / w, 3), round(float(ys.mean() + 0.5) / h, 3)
    if not mask[min(h - 1, int(y * h)), min(w - 1, int(x * w))]:
        return None
    return ctx.sample("flat_point_one", [PG], "Point to the shape. Answer with normalized (x, y) coordinates.",
                      [[x, y]], AnswerType.POINTS, [img], f"The {f.name} is at about ({x:.2f}, {y:.2f}).",
                      mask=ctx.save_mask(mask), mask_pixels=int(mask.sum()))
