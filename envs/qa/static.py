"""Single-moment templates: perception & grounding, quantitative, spatial, affordance, multi-object consistency.

Every answer is read from the loaded scene (poses, sizes, segmentation) or from a short simulation of it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from dppo_embodied.types import AnswerType, EmbodiedSample
from envs.qa.common import QAContext, cm, fmt_xy, point_in_mask
from envs.spec import COLORS, SHAPES, TABLE_HALF, ObjectSpec, free_position

POINT_FORMAT = "Answer with normalized (x, y) coordinates."
MIN_VISIBLE_PX = 6
PG, QN, SG = "perception_grounding", "quantitative_numerical", "spatial_geometric"
AF, MO = "affordance_function", "multi_object_consistency"


def jitter(ctx: QAContext, lo: float = 0.003, hi: float = 0.007) -> np.ndarray:
    """A random horizontal placement error of ``lo``..``hi`` metres."""
    r, a = ctx.rng.uniform(lo, hi), ctx.rng.uniform(0, 2 * math.pi)
    return np.array([r * math.cos(a), r * math.sin(a)])


def visible(ctx: QAContext, camera: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(segmentation, visible pixel count per object)`` of the current scene (default: the question camera)."""
    seg = ctx.scene.render_segmentation(camera or ctx.camera)
    counts = np.array([(seg == i).sum() for i in range(ctx.scene.n_objects)])
    return seg, counts


def _all_visible(ctx: QAContext) -> np.ndarray | None:
    seg, counts = visible(ctx)
    return seg if (counts >= MIN_VISIBLE_PX).all() else None


def _names(ctx: QAContext) -> list[str]:
    assert ctx.spec is not None
    return [o.name for o in ctx.spec.objects]


def _listing(ctx: QAContext) -> str:
    return ", ".join(_names(ctx))


def _unique_object(ctx: QAContext, attr: str, values: Sequence[str]) -> tuple[str, ObjectSpec] | None:
    """In a new scene, a value of ``attr`` (``"shape"`` or ``"color"``) that one object alone has, and that object;
    ``None`` when no value is unique or an object is hidden."""
    spec = ctx.new_scene()
    have = [getattr(o, attr) for o in spec.objects]
    unique = [v for v in values if have.count(v) == 1]
    if not unique or _all_visible(ctx) is None:
        return None
    value = ctx.pick(unique)
    return value, spec.objects[have.index(value)]


# ------------------------------------------------------------------------------------- perception & grounding
def color_of_shape(ctx: QAContext) -> EmbodiedSample | None:
    """What colour is the <shape>? (the shape is unique in the scene)"""
    found = _unique_object(ctx, "shape", SHAPES)
    if found is None:
        return None
    shape, o = found
    opts, ans = ctx.mcq(o.color, list(COLORS))
    return ctx.sample("color_of_shape", [PG], f"What colour is the {shape}?", ans, AnswerType.MCQ,
                      [ctx.render()], f"There is one {shape} on the table and it is {o.color}.", opts)


def shape_of_color(ctx: QAContext) -> EmbodiedSample | None:
    """What shape is the <colour> object? (the colour is unique in the scene)"""
    found = _unique_object(ctx, "color", COLORS)
    if found is None:
        return None
    color, o = found
    opts, ans = ctx.mcq(o.shape, list(SHAPES), n=3)
    return ctx.sample("shape_of_color", [PG], f"What shape is the {color} object?", ans, AnswerType.MCQ,
                      [ctx.render()], f"The only {color} object on the table is a {o.shape}.", opts)


def point_to(ctx: QAContext) -> EmbodiedSample | None:
    """Point to the <name>. (points; the scoring region is the object's segmentation mask)"""
    spec = ctx.new_scene()
    seg, counts = visible(ctx)
    ok = [i for i in range(len(spec.objects)) if counts[i] >= MIN_VISIBLE_PX]
    if not ok:
        return None
    i = ctx.pick(ok)
    mask = seg == i
    pt = point_in_mask(mask)
    assert pt is not None
    o = spec.objects[i]
    return ctx.sample("point_to", [PG], f"Point to the {o.name}. {POINT_FORMAT}", [list(pt)], AnswerType.POINTS,
                      [ctx.render()], f"The {o.name} is at about ({pt[0]:.2f}, {pt[1]:.2f}) in the image.",
                      mask=ctx.save_mask(mask), mask_pixels=int(mask.sum()))


def exists(ctx: QAContext) -> EmbodiedSample | None:
    """Is there a <colour> <shape> on the table? (yes/no)"""
    spec = ctx.new_scene()
    if _all_visible(ctx) is None:
        return None
    present = {o.name for o in spec.objects}
    if ctx.rng.random() < 0.5:
        name, ans = ctx.pick(sorted(present)), "yes"
    else:
        absent = [f"{c} {s}" for c in COLORS for s in SHAPES if f"{c} {s}" not in present]
        # prefer near misses: right colour or right shape
        near = [n for n in absent if any(n.split()[0] == p.split()[0] or n.split()[1] == p.split()[1]
                                         for p in present)]
        name, ans = ctx.pick(near or absent), "no"
    why = f"The table holds: {_listing(ctx)}. " + ("It is there." if ans == "yes" else f"There is no {name}.")
    return ctx.sample("exists", [PG], f"Is there a {name} on the table?", ans, AnswerType.YES_NO, [ctx.render()], why)


# --------------------------------------------------------------------------------------------- quantitative
def _count_of(ctx: QAContext, attr: str, values: Sequence[str]) -> tuple[str, list[str]] | None:
    """In a new scene (with some distractors), a value of ``attr`` (``"color"`` or ``"shape"``: the anchor's, or
    any) and the names of the objects that have it; ``None`` when an object is hidden."""
    spec = ctx.new_scene(distractors=max(ctx.difficulty.distractors, int(ctx.rng.integers(0, 3))))
    if _all_visible(ctx) is None:
        return None
    value = getattr(spec.objects[spec.anchor], attr) if ctx.rng.random() < 0.7 else ctx.pick(list(values))
    return value, [o.name for o in spec.objects if getattr(o, attr) == value]


def count_color(ctx: QAContext) -> EmbodiedSample | None:
    """How many <colour> objects are on the table? (count)"""
    found = _count_of(ctx, "color", COLORS)
    if found is None:
        return None
    color, hits = found
    why = f"The {color} objects are: {', '.join(hits)}; that is {len(hits)}." if hits else f"No object is {color}."
    return ctx.sample("count_color", [QN], f"How many {color} objects are on the table?", len(hits),
                      AnswerType.COUNT, [ctx.render()], why)


def count_shape(ctx: QAContext) -> EmbodiedSample | None:
    """How many <shape>s are on the table? (count)"""
    found = _count_of(ctx, "shape", SHAPES)
    if found is None:
        return None
    shape, hits = found
    why = f"The {shape}s are: {', '.join(hits)}; that is {len(hits)}." if hits else f"There is no {shape}."
    return ctx.sample("count_shape", [QN], f"How many {shape}s are on the table?", len(hits), AnswerType.COUNT,
                      [ctx.render()], why)


def count_all(ctx: QAContext) -> EmbodiedSample | None:
    """How many objects are on the table? (count)"""
    spec = ctx.new_scene()
    if _all_visible(ctx) is None:
        return None
    n = len(spec.objects)
    return ctx.sample("count_all", [QN], "How many objects are on the table?", n, AnswerType.COUNT, [ctx.render()],
                      f"The objects are: {_listing(ctx)}; that is {n}.")


def distance_cm(ctx: QAContext) -> EmbodiedSample | None:
    """Distance between two object centres in whole cm (number, MRA-scored)."""
    spec = ctx.new_scene(n_objects=(max(2, ctx.difficulty.n_objects[0]), ctx.difficulty.n_objects[1]))
    if len(spec.objects) < 2 or _all_visible(ctx) is None:
        return None
    i, j = ctx.pick(list(range(len(spec.objects))), 2)
    a, b = ctx.scene.object_pos(i), ctx.scene.object_pos(j)
    d = cm(math.hypot(*(a[:2] - b[:2])))
    oa, ob = spec.objects[i], spec.objects[j]
    why = (f"On the table the {oa.name} is at {fmt_xy(a)} and the {ob.name} at {fmt_xy(b)}; the distance between "
           f"their centres is about {d} cm.")
    return ctx.sample("distance_cm", [QN, SG],
                      f"How far apart are the centres of the {oa.name} and the {ob.name}, in centimetres?",
                      d, AnswerType.NUMBER, [ctx.render()], why, unit="cm")


def height_cm(ctx: QAContext) -> EmbodiedSample | None:
    """How tall is the <name>, in cm? (number)"""
    spec = ctx.new_scene()
    if _all_visible(ctx) is None:
        return None
    o = ctx.pick(spec.objects)
    return ctx.sample("height_cm", [QN], f"How tall is the {o.name}, in centimetres?", o.height_cm,
                      AnswerType.NUMBER, [ctx.render()], f"The {o.name} is {o.height_cm} cm tall.", unit="cm")


# -------------------------------------------------------------------------------------------------- spatial
def _pair(ctx: QAContext, min_objects: int = 2) -> tuple[int, int] | None:
    spec = ctx.new_scene(n_objects=(max(min_objects, ctx.difficulty.n_objects[0]), ctx.difficulty.n_objects[1]))
    if len(spec.objects) < 2 or _all_visible(ctx) is None:
        return None
    i, j = ctx.pick(list(range(len(spec.objects))), 2)
    return int(i), int(j)


def left_of(ctx: QAContext) -> EmbodiedSample | None:
    """From the camera's view, is A left of B? (yes/no; image x differs by >= 0.05)"""
    pair = _pair(ctx)
    if pair is None:
        return None
    i, j = pair
    spec, sc = ctx.spec, ctx.scene
    assert spec is not None
    xa, xb = sc.project(sc.object_pos(i), ctx.camera)[0], sc.project(sc.object_pos(j), ctx.camera)[0]
    if abs(xa - xb) < 0.05:
        return None
    a, b = spec.objects[i].name, spec.objects[j].name
    ans = "yes" if xa < xb else "no"
    why = (f"In the image the {a} is at x = {xa:.2f} and the {b} at x = {xb:.2f}, so the {a} is "
           f"{'left' if xa < xb else 'right'} of the {b}.")
    return ctx.sample("left_of", [SG], f"From the camera's view, is the {a} to the left of the {b}?", ans,
                      AnswerType.YES_NO, [ctx.render()], why)


def in_front_of(ctx: QAContext) -> EmbodiedSample | None:
    """Is A in front of B, i.e. closer to the camera? (yes/no; depth differs by >= 3 cm)"""
    pair = _pair(ctx)
    if pair is None:
        return None
    i, j = pair
    spec, sc = ctx.spec, ctx.scene
    assert spec is not None
    cam = sc.calibration(ctx.camera).world_from_camera[:3, 3]
    da, db = (float(np.linalg.norm(sc.object_pos(k) - cam)) for k in (i, j))
    if abs(da - db) < 0.03:
        return None
    a, b = spec.objects[i].name, spec.objects[j].name
    ans = "yes" if da < db else "no"
    why = f"The {a} is {cm(da)} cm from the camera and the {b} {cm(db)} cm, so the {a} is " + (
        "in front of" if da < db else "behind") + f" the {b}."
    return ctx.sample("in_front_of", [SG], f"Is the {a} in front of the {b} (closer to the camera)?", ans,
                      AnswerType.YES_NO, [ctx.render()], why)


def nearest_object(ctx: QAContext) -> EmbodiedSample | None:
    """Which object is closest to A? (mcq; the nearest is at least 2 cm nearer than the runner-up)"""
    spec = ctx.new_scene(n_objects=(max(3, ctx.difficulty.n_objects[0]), max(3, ctx.difficulty.n_objects[1])))
    if _all_visible(ctx) is None:
        return None
    i = int(ctx.rng.integers(len(spec.objects)))
    p = ctx.scene.object_positions()
    d = np.hypot(*(p[:, :2] - p[i, :2]).T)
    d[i] = np.inf
    order = np.argsort(d)
    if d[order[1]] - d[order[0]] < 0.02:
        return None
    k = int(order[0])
    others = [spec.objects[m].name for m in range(len(spec.objects)) if m not in (i, k)]
    opts, ans = ctx.mcq(spec.objects[k].name, others)
    why = (f"The {spec.objects[k].name} is {cm(d[k])} cm from the {spec.objects[i].name}; the next closest, the "
           f"{spec.objects[int(order[1])].name}, is {cm(d[order[1]])} cm away.")
    return ctx.sample("nearest_object", [SG], f"Which object is closest to the {spec.objects[i].name}?", ans,
                      AnswerType.MCQ, [ctx.render()], why, opts)


# ------------------------------------------------------------------------------------------------ affordance
def free_spot(ctx: QAContext) -> EmbodiedSample | None:
    """Point to a free spot where A fits (points; mask = table pixels with enough clearance)."""
    spec = ctx.new_scene()
    sc = ctx.scene
    i = int(ctx.rng.integers(len(spec.objects)))
    o = spec.objects[i]
    seg = sc.render_segmentation(ctx.camera)
    cal = sc.calibration(ctx.camera)
    h, w = seg.shape
    us, vs = np.meshgrid((np.arange(w) + 0.5) / w, (np.arange(h) + 0.5) / h)
    o_w, d_w = cal.world_from_camera[:3, 3], cal.world_from_camera[:3, :3]
    dirs = np.stack([(us * w - cal.cx) / cal.fx, (vs * h - cal.cy) / cal.fy, np.ones_like(us)], -1) @ d_w.T
    s = -o_w[2] / dirs[..., 2]
    pts = o_w[:2] + s[..., None] * dirs[..., :2]
    need = o.radius + 0.01
    clear = np.minimum(TABLE_HALF[0] - np.abs(pts[..., 0]), TABLE_HALF[1] - np.abs(pts[..., 1])) - need
    for j, other in enumerate(spec.objects):
        if j == i:
            continue
        pj = sc.object_pos(j)
        clear = np.minimum(clear, np.hypot(pts[..., 0] - pj[0], pts[..., 1] - pj[1]) - other.radius - need)
    table = (seg == -2) | (seg == -4)
    mask = table & (clear > 0)
    if mask.sum() < 12:
        return None
    cand = np.where(mask, clear, -np.inf)
    k = int(np.argmax(cand))
    v, u = divmod(k, w)
    pt = [round((u + 0.5) / w, 3), round((v + 0.5) / h, 3)]
    q = pts[v, u]
    why = (f"The {o.name} needs a circle of about {cm(o.radius) + 1} cm radius. The table around ({cm(q[0])}, "
           f"{cm(q[1])}) cm is free, which is at ({pt[0]:.2f}, {pt[1]:.2f}) in the image.")
    return ctx.sample("free_spot", [AF],
                      f"Point to a free spot on the table where the {o.name} could be placed without touching "
                      f"other objects. {POINT_FORMAT}", [pt], AnswerType.POINTS, [ctx.render()], why,
                      mask=ctx.save_mask(mask), mask_pixels=int(mask.sum()))


def stack_on(ctx: QAContext) -> EmbodiedSample | None:
    """Can A be stacked on top of B? (yes/no, decided by simulating the placement)"""
    spec = ctx.new_scene(n_objects=(max(2, ctx.difficulty.n_objects[0]), ctx.difficulty.n_objects[1]), stacks=0)
    if _all_visible(ctx) is None:
        return None
    balls = [k for k, o in enumerate(spec.objects) if o.shape == "ball"]
    idx = list(range(len(spec.objects)))
    j = ctx.pick(balls) if balls and ctx.rng.random() < 0.5 else ctx.pick(idx)  # the base
    i = ctx.pick([k for k in idx if k != j])
    image = ctx.render()
    sc = ctx.scene
    pb = sc.object_pos(j)
    top = pb[2] + spec.objects[j].half_height
    off = jitter(ctx)  # a real placement is never perfectly centred
    sc.set_object_pose(i, np.array([pb[0] + off[0], pb[1] + off[1], top + spec.objects[i].half_height + 0.003]))
    sc.forward()
    sc.step(int(1.5 / 0.004))
    pa, pb2 = sc.object_pos(i), sc.object_pos(j)
    stays = math.hypot(*(pa[:2] - pb2[:2])) < spec.objects[j].half_width and pa[2] > top
    a, b = spec.objects[i].name, spec.objects[j].name
    why = (f"The top of the {b} is {'flat' if spec.objects[j].shape != 'ball' else 'round'}; placed on it, the {a} "
           + ("stays there." if stays else "slides off."))
    return ctx.sample("stack_on", [AF, "physical_causal"], f"Can the {a} be stacked on top of the {b}?",
                      "yes" if stays else "no", AnswerType.YES_NO, [image], why)


# ----------------------------------------------------------------------------------------------- multi-object
def same_arrangement(ctx: QAContext) -> EmbodiedSample | None:
    """Front view + top view: same arrangement, or were two objects swapped in between? (yes/no)"""
    spec = ctx.new_scene(n_objects=(max(3, ctx.difficulty.n_objects[0]), max(3, ctx.difficulty.n_objects[1])),
                         stacks=0)
    if _all_visible(ctx) is None:
        return None
    sc = ctx.scene
    front = ctx.render("front")
    swap = ctx.rng.random() < 0.5
    why = "Matching colours and shapes between the views, every object is in the same place."
    if swap:
        i, j = ctx.pick(list(range(len(spec.objects))), 2)
        pi, pj = sc.object_pos(i), sc.object_pos(j)
        dz_i = spec.objects[i].half_height
        dz_j = spec.objects[j].half_height
        sc.set_object_pose(i, np.array([pj[0], pj[1], dz_i + 1e-4]))
        sc.set_object_pose(j, np.array([pi[0], pi[1], dz_j + 1e-4]))
        sc.forward()
        if math.hypot(*(pi[:2] - pj[:2])) < 0.04:
            return None
        why = f"The {spec.objects[i].name} and the {spec.objects[j].name} have swapped places between the views."
    top = ctx.render("top")
    return ctx.sample("same_arrangement", [MO],
                      "Image 1 is the front camera and image 2 the top camera. Do both images show the same "
                      "arrangement of objects?", "no" if swap else "yes", AnswerType.YES_NO, [front, top], why,
                      cameras=["front", "top"])


def count_two_views(ctx: QAContext) -> EmbodiedSample | None:
    """How many objects, using the front and top views? (count; some may be hidden in one view)"""
    spec = ctx.new_scene()
    _, f_counts = visible(ctx, "front")
    _, t_counts = visible(ctx, "top")
    if not ((f_counts >= MIN_VISIBLE_PX) | (t_counts >= MIN_VISIBLE_PX)).all():
        return None
    n = len(spec.objects)
    hidden = [spec.objects[k].name for k in range(n) if f_counts[k] < MIN_VISIBLE_PX]
    why = f"Across both views the objects are: {_listing(ctx)}; that is {n}."
    if hidden:
        why += f" The {', '.join(hidden)} is hidden in the front view."
    return ctx.sample("count_two_views", [MO, QN],
                      "Image 1 is the front camera and image 2 the top camera of the same table. How many objects "
                      "are on the table?", n, AnswerType.COUNT, [ctx.render("front"), ctx.render("top")], why,
                      cameras=["front", "top"])


def what_changed(ctx: QAContext) -> EmbodiedSample | None:
    """Two frames from one camera; exactly one object was moved in between. Which? (mcq)"""
    spec = ctx.new_scene(n_objects=(max(3, ctx.difficulty.n_objects[0]), max(3, ctx.difficulty.n_objects[1])),
                         stacks=0)
    if _all_visible(ctx) is None:
        return None
    sc = ctx.scene
    before = ctx.render()
    i = int(ctx.rng.integers(len(spec.objects)))
    placed = [(*sc.object_pos(k)[:2], spec.objects[k].radius) for k in range(len(spec.objects)) if k != i]
    old = sc.object_pos(i)
    new = free_position(ctx.rng, spec.objects[i].radius, placed)
    if new is None or math.hypot(new[0] - old[0], new[1] - old[1]) < 0.08:
        return None
    sc.set_object_pose(i, np.array([new[0], new[1], old[2]]))
    sc.forward()
    if _all_visible(ctx) is None:
        return None
    o = spec.objects[i]
    opts, ans = ctx.mcq(o.name, [x.name for x in spec.objects if x is not o])
    why = f"The {o.name} moved from {fmt_xy(old)} to {fmt_xy(np.array(new))}; every other object stayed put."
    return ctx.sample("what_changed", [MO], "One object was moved between image 1 and image 2. Which one?", ans,
                      AnswerType.MCQ, [before, ctx.render()], why, opts)
