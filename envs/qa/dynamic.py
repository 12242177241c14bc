"""Rollout templates: temporal & sequential, scene & action understanding, physical & causal, decision & planning.

Each one simulates what it asks about with the scripted :class:`~envs.control.Controller` and reads the answer
from the resulting state (what moved, contacts, what fell, whether a plan reached its goal).
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from dppo_embodied.actions import PUSH_CM
from dppo_embodied.types import AnswerType, EmbodiedSample
from envs.control import DIRECTIONS, Controller
from envs.qa.common import QAContext, Recorder, cm, fmt_xy
from envs.qa.static import jitter
from envs.spec import TABLE_HALF, free_position

TS, SA, PC, DP = "temporal_sequential", "scene_action_understanding", "physical_causal", "decision_planning"
#: simulated seconds per push event in a clip (used to turn clip_s into a number of events)
EVENT_S = 2.0


def _moved(before: np.ndarray, after: np.ndarray, tol: float = 0.015) -> list[int]:
    return [k for k in range(len(before)) if np.linalg.norm(after[k, :2] - before[k, :2]) > tol]


def _safe_dirs(p: np.ndarray, dist: float, margin: float) -> list[str]:
    out = []
    for name, (v, _) in DIRECTIONS.items():
        q = p[:2] + np.array(v) * dist
        if abs(q[0]) < TABLE_HALF[0] - margin and abs(q[1]) < TABLE_HALF[1] - margin:
            out.append(name)
    return out


def _push_clip(ctx: QAContext, n_events: int) -> tuple[list[tuple[int, str]], Recorder, np.ndarray] | None:
    """Push ``n_events`` distinct objects one after the other; each push must move only its object."""
    spec = ctx.new_scene(n_objects=(max(n_events + 1, ctx.difficulty.n_objects[0]),
                                    max(n_events + 1, ctx.difficulty.n_objects[1])), stacks=0)
    if len(spec.objects) < n_events:
        return None
    sc = ctx.scene
    rec = Recorder(sc)
    ctl = Controller(sc, speed=1.0, on_tick=rec)
    start = sc.object_positions()
    events: list[tuple[int, str]] = []
    for i in ctx.pick(list(range(len(spec.objects))), n_events):
        p = sc.object_pos(int(i))
        dirs = _safe_dirs(p, PUSH_CM / 100 + 0.02, spec.objects[int(i)].radius + 0.02)
        if not dirs:
            return None
        d = ctx.pick(dirs)
        before = sc.object_positions()
        ctl.push_object(int(i), DIRECTIONS[d][0], PUSH_CM / 100)
        ctl.home()
        if _moved(before, sc.object_positions()) != [int(i)]:
            return None
        events.append((int(i), d))
    return events, rec, start


# ----------------------------------------------------------------------------------------------- temporal
def push_order(ctx: QAContext) -> EmbodiedSample | None:
    """Frames of a clip in which the robot pushes 1-4 objects: which / which first / in what order."""
    n_events = int(np.clip(round(ctx.difficulty.clip_s / EVENT_S), 1, 4))
    out = _push_clip(ctx, n_events)
    if out is None:
        return None
    events, rec, _ = out
    spec = ctx.spec
    assert spec is not None
    names = [spec.objects[i].name for i, _ in events]
    frames, video, meta = ctx.save_clip(rec)
    others = [o.name for o in spec.objects]
    if n_events == 1:
        opts, ans = ctx.mcq(names[0], others)
        return ctx.sample("which_pushed", [TS, SA], "Which object did the robot push during the clip?", ans,
                          AnswerType.MCQ, frames, f"Across the frames only the {names[0]} changes place.", opts,
                          video=video, **meta)
    if n_events == 2:
        opts, ans = ctx.mcq(names[0], [names[1], *others])
        why = f"The {names[0]} moves in the early frames and the {names[1]} later."
        return ctx.sample("first_pushed", [TS], "The robot pushes two objects during the clip. Which one first?",
                          ans, AnswerType.MCQ, frames, why, opts, video=video, **meta)
    why = "The objects change place in this order: " + ", then ".join(f"the {n}" for n in names) + "."
    return ctx.sample("push_sequence", [TS],
                      f"The robot pushes {n_events} objects during the clip. List them in the order they were pushed.",
                      names, AnswerType.SEQUENCE, frames, why, video=video, **meta)


def push_direction(ctx: QAContext) -> EmbodiedSample | None:
    """In which direction did the robot push the <name>? (mcq over the four directions)"""
    out = _push_clip(ctx, 1)
    if out is None:
        return None
    (i, d), rec, start = out[0][0], out[1], out[2]
    spec = ctx.spec
    assert spec is not None
    p0, p1 = start[i], ctx.scene.object_pos(i)
    frames, video, meta = ctx.save_clip(rec)
    phrases = [v[1] for v in DIRECTIONS.values()]
    opts, ans = ctx.mcq(DIRECTIONS[d][1], phrases)
    why = f"The {spec.objects[i].name} goes from {fmt_xy(p0)} to {fmt_xy(p1)}, that is {DIRECTIONS[d][1]}."
    return ctx.sample("push_direction", [TS, SA], f"In which direction did the robot push the {spec.objects[i].name}?",
                      ans, AnswerType.MCQ, frames, why, opts, video=video, **meta)


# ------------------------------------------------------------------------------------ scene & action understanding
def _describe(kind: str, a: str, b: str = "", d: str = "") -> str:
    if kind == "pick":
        return f"picked up the {a}"
    if kind == "push":
        return f"pushed the {a} {DIRECTIONS[d][1]}"
    return f"stacked the {a} on the {b}"


def which_action(ctx: QAContext) -> EmbodiedSample | None:
    """Before/after frames of one skill: which action happened? (mcq of action phrases)"""
    spec = ctx.new_scene(n_objects=(max(2, ctx.difficulty.n_objects[0]), max(2, ctx.difficulty.n_objects[1])),
                         stacks=0)
    sc = ctx.scene
    before = ctx.render()
    ctl = Controller(sc, speed=1.0)
    idx = list(range(len(spec.objects)))
    i, j = (int(k) for k in ctx.pick(idx, 2))
    flat = spec.objects[j].shape != "ball"
    kind = ctx.pick(["pick", "push", "stack"] if flat else ["pick", "push"])
    a, b = spec.objects[i].name, spec.objects[j].name
    d = ""
    if kind == "pick":
        if not ctl.pick(i).ok:
            return None
        ctl.home()
        ok = sc.held == i
        why = f"In the second image the {a} hangs in the gripper above the table."
    elif kind == "push":
        dirs = _safe_dirs(sc.object_pos(i), PUSH_CM / 100 + 0.02, spec.objects[i].radius + 0.02)
        if not dirs:
            return None
        d = ctx.pick(dirs)
        before_pos = sc.object_positions()
        ctl.push_object(i, DIRECTIONS[d][0], PUSH_CM / 100)
        ctl.home()
        ok = _moved(before_pos, sc.object_positions()) == [i]
        why = f"Only the {a} changed place, moving {DIRECTIONS[d][1]}."
    else:
        ok = ctl.pick(i).ok
        if ok:
            pb = sc.object_pos(j)
            ctl.place(pb[0], pb[1], ctl.top_z(j))
            ctl.home()
            ok = ctl.object_below(i) == j
        why = f"In the second image the {a} rests on top of the {b}."
    if not ok:
        return None
    correct = _describe(kind, a, b, d)
    dist = [_describe("pick", b), _describe("push", a, d=ctx.pick([x for x in DIRECTIONS if x != d])),
            _describe("stack", b, a), _describe("pick", a), _describe("stack", a, b)]
    opts, ans = ctx.mcq(correct, dist)
    return ctx.sample("which_action", [SA], "Image 1 is before and image 2 after the robot acted. What did it do?",
                      ans, AnswerType.MCQ, [before, ctx.render()], why, opts)


def stack_success(ctx: QAContext) -> EmbodiedSample | None:
    """The robot tried to stack A on B (before/after frames). Did it succeed? (yes/no from the rollout)"""
    spec = ctx.new_scene(n_objects=(max(2, ctx.difficulty.n_objects[0]), max(2, ctx.difficulty.n_objects[1])),
                         stacks=0)
    sc = ctx.scene
    idx = list(range(len(spec.objects)))
    balls = [k for k in idx if spec.objects[k].shape == "ball"]
    j = int(ctx.pick(balls)) if balls and ctx.rng.random() < 0.5 else int(ctx.pick(idx))
    i = int(ctx.pick([k for k in idx if k != j]))
    before = ctx.render()
    ctl = Controller(sc, speed=1.0)
    if not ctl.pick(i).ok:
        return None
    pb = sc.object_pos(j)[:2] + jitter(ctx)
    ctl.place(pb[0], pb[1], ctl.top_z(j))
    ctl.home()
    sc.settle(1.0)
    ok = ctl.object_below(i) == j
    a, b = spec.objects[i].name, spec.objects[j].name
    why = f"In image 2 the {a} " + (f"rests on the {b}." if ok else f"is not on the {b}; it slid off.")
    return ctx.sample("stack_success", [SA, PC],
                      f"Image 1 is before and image 2 after the robot tried to stack the {a} on the {b}. "
                      "Did it succeed?", "yes" if ok else "no", AnswerType.YES_NO, [before, ctx.render()], why)


# -------------------------------------------------------------------------------------------- physical & causal
def push_hits(ctx: QAContext) -> EmbodiedSample | None:
    """If the robot pushes A d cm in a direction, will it hit B? (yes/no from a simulated push)"""
    spec = ctx.new_scene(n_objects=(max(2, ctx.difficulty.n_objects[0]), max(2, ctx.difficulty.n_objects[1])),
                         stacks=0)
    sc = ctx.scene
    i, j = (int(k) for k in ctx.pick(list(range(len(spec.objects))), 2))
    pa, pb = sc.object_pos(i), sc.object_pos(j)
    delta = pb[:2] - pa[:2]
    d = ("right" if delta[0] > 0 else "left") if abs(delta[0]) > abs(delta[1]) else (
        "away" if delta[1] > 0 else "toward")
    gap = float(np.linalg.norm(delta)) - spec.objects[i].radius - spec.objects[j].radius
    dist = int(np.clip(round(100 * gap + float(ctx.rng.choice([-3, 4, 7]))), 3, 20))
    image = ctx.render()
    hit = False

    def watch(scene: object) -> None:
        nonlocal hit
        hit = hit or (min(i, j), max(i, j)) in sc.contacts()

    ctl = Controller(sc, speed=1.0, on_tick=watch)
    ctl.push_object(i, DIRECTIONS[d][0], dist / 100)
    a, b = spec.objects[i].name, spec.objects[j].name
    why = (f"The gap between the {a} and the {b} is about {max(0, cm(gap))} cm; pushed {dist} cm "
           f"{DIRECTIONS[d][1]}, the {a} " + ("reaches" if hit else "does not reach") + f" the {b}.")
    return ctx.sample("push_hits", [PC], f"If the robot pushes the {a} {dist} cm {DIRECTIONS[d][1]}, will it hit "
                      f"the {b}?", "yes" if hit else "no", AnswerType.YES_NO, [image], why, push_cm=dist)


def falls_off(ctx: QAContext) -> EmbodiedSample | None:
    """If the robot pushes A d cm toward the nearest edge, will it fall off the table? (yes/no, simulated)"""
    spec = ctx.new_scene(stacks=0)
    sc = ctx.scene
    i = int(ctx.rng.integers(len(spec.objects)))
    p = sc.object_pos(i)
    edges = {"left": TABLE_HALF[0] + p[0], "right": TABLE_HALF[0] - p[0], "away": TABLE_HALF[1] - p[1]}
    d = min(edges, key=lambda k: edges[k])
    edge = edges[d]
    dist = int(np.clip(round(100 * edge + float(ctx.rng.choice([-4, -2, 2, 5]))), 2, 20))
    image = ctx.render()
    ctl = Controller(sc, speed=1.0)
    ctl.push_object(i, DIRECTIONS[d][0], dist / 100)
    ctl.home()
    sc.settle(1.5)
    fell = not sc.on_table(i)
    a = spec.objects[i].name
    why = (f"The {a} is {cm(edge)} cm from the edge {DIRECTIONS[d][1].replace('to the ', '')}; pushed {dist} cm, it "
           + ("goes over the edge and falls." if fell else "stays on the table."))
    return ctx.sample("falls_off", [PC], f"If the robot pushes the {a} {dist} cm {DIRECTIONS[d][1]}, will it fall "
                      "off the table?", "yes" if fell else "no", AnswerType.YES_NO, [image], why, push_cm=dist)


# ------------------------------------------------------------------------------------------ decision & planning
def _clear_spot(ctx: QAContext, i: int) -> tuple[float, float] | None:
    sc, spec = ctx.scene, ctx.spec
    assert spec is not None
    placed = [(*sc.object_pos(k)[:2], spec.objects[k].radius) for k in range(len(spec.objects)) if k != i]
    return free_position(ctx.rng, spec.objects[i].radius, placed)


def tower_plan(ctx: QAContext) -> EmbodiedSample | None:
    """Ordered steps to build a 2-3 object tower, unstacking blockers first (sequence; verified by execution)."""
    d = ctx.difficulty
    spec = ctx.new_scene(n_objects=(max(3, d.n_objects[0]), max(3, d.n_objects[1])), shapes=("block", "cylinder"))
    sc = ctx.scene
    height = 3 if ctx.rng.random() < 0.4 or d.stacks > 0 else 2
    tower = [int(k) for k in ctx.pick(list(range(len(spec.objects))), height)]
    image = ctx.render()
    ctl = Controller(sc, speed=1.0)
    steps: list[str] = []
    names = [o.name for o in spec.objects]
    for k in tower:  # clear every tower object that carries something
        above = ctl.object_above(k)
        if above is not None and above not in tower:
            spot = _clear_spot(ctx, above)
            if spot is None or not ctl.pick(above).ok:
                return None
            ctl.place(spot[0], spot[1], 0.0)
            steps += [f"pick {names[above]}", f"place {names[above]} on table"]
    for lower, upper in pairwise(tower):
        if ctl.object_below(upper) == lower:
            continue
        if ctl.object_above(upper) is not None or not ctl.pick(upper).ok:
            return None
        pb = sc.object_pos(lower)
        ctl.place(pb[0], pb[1], ctl.top_z(lower))
        steps += [f"pick {names[upper]}", f"place {names[upper]} on {names[lower]}"]
    ctl.home()
    sc.settle(1.0)
    if not steps or any(ctl.object_below(u) != lo for lo, u in pairwise(tower)):
        return None
    goal = f"the {names[tower[0]]} at the bottom, " + ", then ".join(f"the {names[k]}" for k in tower[1:]) + " on top"
    why = "To build the tower " + "; ".join(steps) + "."
    return ctx.sample("tower_plan", [DP],
                      f"Give the steps to build a tower with {goal}. Use steps like 'pick X' and 'place X on Y'.",
                      steps, AnswerType.SEQUENCE, [image], why, goal=[names[k] for k in tower])


def first_step(ctx: QAContext) -> EmbodiedSample | None:
    """The robot must pick up Y, which carries X: what should it do first? (mcq; verified by the controller)"""
    spec = ctx.new_scene(stacks=max(1, ctx.difficulty.stacks), shapes=("block", "cylinder"))
    stacked = [k for k, o in enumerate(spec.objects) if o.on is not None]
    if not stacked:
        return None
    x = int(ctx.pick(stacked))
    y = spec.objects[x].on
    assert y is not None
    sc = ctx.scene
    sc.settle(0.5)
    image = ctx.render()
    ctl = Controller(sc, speed=1.0)
    if ctl.pick(y).ok or not ctl.pick(x).ok:  # picking Y first must fail, X first must work
        return None
    a, b = spec.objects[x].name, spec.objects[y].name
    correct = f"pick up the {a}"
    dist = [f"pick up the {b}", f"push the {b}", f"place the {a} on the {b}"]
    opts, ans = ctx.mcq(correct, dist)
    why = f"The {a} sits on top of the {b}, so the {a} must be removed before the {b} can be picked up."
    return ctx.sample("first_step", [DP], f"The robot must pick up the {b}. What should it do first?", ans,
                      AnswerType.MCQ, [image], why, opts)
