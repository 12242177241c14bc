"""Seeded tabletop scene specifications (pure numpy, no MuJoCo): objects, colours, sizes, masses, placements.

World frame (metres): the table top is the plane ``z = 0``, x points right as seen from the ``front`` camera,
y points away from it (larger y = farther from the camera), z up. Sizes are whole centimetres so that
quantitative questions have short canonical answers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dppo_embodied.errors import ConfigError

#: Shape vocabulary (what questions call them) -> MuJoCo geom type.
SHAPES: dict[str, str] = {"block": "box", "cylinder": "cylinder", "ball": "sphere"}
#: Colour vocabulary -> RGB in [0, 1]; saturated and far apart so that a 96-pixel image tells them apart.
COLORS: dict[str, tuple[float, float, float]] = {
    "red": (0.85, 0.08, 0.08),
    "green": (0.10, 0.70, 0.15),
    "blue": (0.10, 0.25, 0.90),
    "yellow": (0.95, 0.85, 0.05),
    "purple": (0.55, 0.15, 0.75),
    "orange": (1.00, 0.50, 0.00),
}
MAX_OBJECTS = 8
MIN_OBJECTS = 1
#: Half extents (x, y) of the table top in metres; the top surface is z = 0.
TABLE_HALF = (0.25, 0.18)
#: Objects are placed inside this margin from the table edge.
PLACE_MARGIN = 0.03
#: Minimum free gap between two object footprints at placement, metres.
MIN_GAP = 0.02


@dataclass
class ObjectSpec:
    """One object on the table.

    Attributes:
        color: a key of :data:`COLORS`.
        shape: a key of :data:`SHAPES`.
        size_cm: block: edge; cylinder: diameter; ball: diameter (whole cm).
        height_cm: block: edge (cubes); cylinder: height; ball: diameter.
        mass: kilograms.
        x: world x of the centre, metres.
        y: world y of the centre, metres.
        on: index of the object this one rests on (a stack), or None when it stands on the table.
        yaw: rotation about z, radians (blocks only; 0 for the others).
    """

    color: str
    shape: str
    size_cm: int
    height_cm: int
    mass: float
    x: float
    y: float
    on: int | None = None
    yaw: float = 0.0

    def __post_init__(self) -> None:
        if self.color not in COLORS:
            raise ConfigError(f"unknown colour {self.color!r}; valid: {', '.join(COLORS)}")
        if self.shape not in SHAPES:
            raise ConfigError(f"unknown shape {self.shape!r}; valid: {', '.join(SHAPES)}")
        if not 1 <= self.size_cm <= 12 or not 1 <= self.height_cm <= 12:
            raise ConfigError(f"object sizes must be 1..12 cm, got {self.size_cm}x{self.height_cm}")

    @property
    def name(self) -> str:
        """Referring expression, e.g. ``"red block"``."""
        return f"{self.color} {self.shape}"

    @property
    def slug(self) -> str:
        """Identifier, e.g. ``"red_block"`` (used by skills: ``{"name": "pick", "object": "red_block"}``)."""
        return f"{self.color}_{self.shape}"

    @property
    def half_height(self) -> float:
        """Half height in metres."""
        return self.height_cm / 200.0

    @property
    def radius(self) -> float:
        """Footprint radius in metres (circumscribed for blocks)."""
        r = self.size_cm / 200.0
        return r * math.sqrt(2.0) if self.shape == "block" else r

    @property
    def half_width(self) -> float:
        """Half the footprint width in metres (block half edge, cylinder/ball radius)."""
        return self.size_cm / 200.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"color": self.color, "shape": self.shape, "size_cm": self.size_cm, "height_cm": self.height_cm,
                "mass": round(self.mass, 4), "x": round(self.x, 4), "y": round(self.y, 4), "on": self.on,
                "yaw": round(self.yaw, 4)}


@dataclass
class SceneSpec:
    """A whole tabletop arrangement. ``objects[i]`` occupies MuJoCo slot ``i``.

    ``anchor`` is the index of the object that :func:`sample_scene`'s distractors resemble (same colour or shape).
    """

    objects: list[ObjectSpec] = field(default_factory=list)
    seed: int | None = None
    anchor: int = 0

    def __post_init__(self) -> None:
        if not MIN_OBJECTS <= len(self.objects) <= MAX_OBJECTS:
            raise ConfigError(f"a scene needs {MIN_OBJECTS}..{MAX_OBJECTS} objects, got {len(self.objects)}")
        names = [o.slug for o in self.objects]
        if len(set(names)) != len(names):
            raise ConfigError(f"object (colour, shape) pairs must be unique in a scene, got {names}")
        for i, o in enumerate(self.objects):
            if o.on is not None and not (0 <= o.on < len(self.objects) and o.on != i):
                raise ConfigError(f"object {i} rests on invalid index {o.on}")

    def index(self, slug_or_name: str) -> int:
        """Index of the object called ``"red_block"`` / ``"red block"``; raises ConfigError listing the valid ones."""
        key = slug_or_name.strip().lower().replace(" ", "_")
        for i, o in enumerate(self.objects):
            if o.slug == key:
                return i
        raise ConfigError(f"no object {slug_or_name!r} in the scene; objects: {[o.slug for o in self.objects]}")

    def base_z(self, i: int) -> float:
        """Height (m) of the surface object ``i`` rests on."""
        o = self.objects[i]
        if o.on is None:
            return 0.0
        return self.base_z(o.on) + 2 * self.objects[o.on].half_height

    def center_z(self, i: int) -> float:
        """Resting height (m) of object ``i``'s centre."""
        return self.base_z(i) + self.objects[i].half_height

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"seed": self.seed, "anchor": self.anchor, "objects": [o.to_dict() for o in self.objects]}


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _sample_object(rng: np.random.Generator, color: str, shape: str) -> ObjectSpec:
    size = int(rng.integers(3, 6))  # 3..5 cm
    height = size if shape != "cylinder" else int(rng.integers(3, 7))
    mass = float(np.round(rng.uniform(0.05, 0.3), 3))
    yaw = float(rng.uniform(-0.5, 0.5)) if shape == "block" else 0.0
    return ObjectSpec(color, shape, size, height, mass, 0.0, 0.0, None, yaw)


def free_position(rng: np.random.Generator, radius: float, placed: list[tuple[float, float, float]],
                  tries: int = 200, margin: float = PLACE_MARGIN) -> tuple[float, float] | None:
    """Sample an (x, y) on the table whose footprint of ``radius`` keeps :data:`MIN_GAP` from ``placed``.

    Args:
        rng: random generator.
        radius: footprint radius of the new object, metres.
        placed: ``(x, y, radius)`` of the footprints already on the table.
        tries: rejection-sampling attempts.
        margin: distance to keep from the table edge, metres.

    Returns:
        The position, or None when no free spot was found.
    """
    hx, hy = TABLE_HALF[0] - margin - radius, TABLE_HALF[1] - margin - radius
    for _ in range(tries):
        x, y = float(rng.uniform(-hx, hx)), float(rng.uniform(-hy, hy))
        if all(math.hypot(x - px, y - py) >= radius + pr + MIN_GAP for px, py, pr in placed):
            return round(x, 4), round(y, 4)
    return None


def sample_scene(seed: int | np.random.Generator | None, n_objects: int | tuple[int, int] = (2, 5),
                 distractors: int = 0, shapes: tuple[str, ...] | None = None, stacks: int = 0,
                 colors: tuple[str, ...] | None = None) -> SceneSpec:
    """Draw a random, physically valid arrangement.

    Args:
        seed: an int seed or a generator (same seed -> same scene).
        n_objects: a count, or an inclusive ``(low, high)`` range, within ``1..MAX_OBJECTS``.
        distractors: how many objects share the colour (with another shape) or the shape (with another colour)
            of the anchor object (``SceneSpec.anchor``), so that grounding needs both attributes.
        shapes: allowed shapes (default: all of :data:`SHAPES`).
        stacks: how many objects start on top of another flat-topped object (a block or cylinder).
        colors: allowed colours (default: all of :data:`COLORS`).

    Returns:
        A :class:`SceneSpec` with unique (colour, shape) pairs and non-overlapping footprints.
    """
    rng = _rng(seed)
    lo, hi = (n_objects, n_objects) if isinstance(n_objects, int) else n_objects
    if not (MIN_OBJECTS <= lo <= hi <= MAX_OBJECTS):
        raise ConfigError(f"n_objects must lie in {MIN_OBJECTS}..{MAX_OBJECTS}, got {n_objects!r}")
    shapes = tuple(shapes or SHAPES)
    colors = tuple(colors or COLORS)
    for s in shapes:
        if s not in SHAPES:
            raise ConfigError(f"unknown shape {s!r}; valid: {', '.join(SHAPES)}")
    if distractors < 0 or stacks < 0:
        raise ConfigError(f"distractors and stacks must be >= 0, got {distractors}, {stacks}")
    n = int(rng.integers(lo, hi + 1))
    pairs = [(c, s) for c in colors for s in shapes]
    if n > len(pairs):
        raise ConfigError(f"only {len(pairs)} distinct (colour, shape) pairs for {n} objects")
    first = pairs[int(rng.integers(len(pairs)))]
    chosen = [first]
    alike = [p for p in pairs if p != first and (p[0] == first[0] or p[1] == first[1])]
    rng.shuffle(alike)
    chosen += alike[: min(distractors, n - 1)]
    # the remaining objects share neither colour nor shape with object 0 when possible
    rest = [p for p in pairs if p not in chosen and p[0] != first[0] and p[1] != first[1]]
    rest += [p for p in pairs if p not in chosen and p not in rest]
    rest_arr = list(rest)
    while len(chosen) < n:
        k = int(rng.integers(len(rest_arr)))
        p = rest_arr.pop(k)
        chosen.append(p)
    objects = [_sample_object(rng, c, s) for c, s in chosen]
    order = list(range(n))
    rng.shuffle(order)
    objects = [objects[i] for i in order]
    anchor = order.index(0)  # where the object the distractors resemble ended up
    # stacks: object k rests on a flat-topped object that stands on the table
    stacked: set[int] = set()
    supports: set[int] = set()
    for _ in range(min(stacks, n // 2)):
        cands = [(a, b) for a in range(n) for b in range(n)
                 if a != b and a not in stacked | supports and b not in stacked | supports
                 and objects[b].shape != "ball" and objects[a].size_cm <= objects[b].size_cm + 1]
        if not cands:
            break
        a, b = cands[int(rng.integers(len(cands)))]
        objects[a].on = b
        stacked.add(a)
        supports.add(b)
    placed: list[tuple[float, float, float]] = []
    for i, o in enumerate(objects):
        if o.on is not None:
            continue
        r = max([o.radius] + [objects[j].radius for j in range(n) if objects[j].on == i])
        pos = free_position(rng, r, placed)
        if pos is None:
            raise ConfigError(f"could not place {n} objects on the table; use fewer objects")
        o.x, o.y = pos
        placed.append((o.x, o.y, r))
    for o in objects:
        if o.on is not None:
            o.x, o.y = objects[o.on].x, objects[o.on].y
    return SceneSpec(objects, seed=seed if isinstance(seed, int) else None, anchor=anchor)
