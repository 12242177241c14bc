"""Scripted motion primitives for the mocap gripper: straight-line waypoints, pick, place, push, relative moves.

Every primitive advances physics in control ticks of :data:`CONTROL_DT` seconds (the TCP moves at most
``speed * CONTROL_DT`` per tick) and returns an :class:`Outcome` whose ``message`` is written as env feedback.
Heights are TCP heights in metres (world frame, table top z = 0). An optional ``on_tick`` callback sees the scene
after every tick (the QA generator records video frames with it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from dppo_embodied.actions import PUSH_DIRECTIONS
from envs.scene import GRIPPER_HOME, TIMESTEP, TabletopScene
from envs.spec import TABLE_HALF

CONTROL_DT = 0.02
SUBSTEPS = round(CONTROL_DT / TIMESTEP)
#: TCP height for carrying objects over the table.
SAFE_Z = 0.20
#: ``move_to`` a point hovers this far above the pointed surface.
HOVER = 0.05
#: TCP height while pushing (finger tips just above the table).
PUSH_Z = 0.012
SPEED = 0.5
PUSH_SPEED = 0.15
#: per-axis limit of one relative move, metres.
MAX_MOVE = 0.10
#: TCP workspace box (x, y, z) low/high, metres.
WORKSPACE_LO = np.array([-TABLE_HALF[0] - 0.05, -TABLE_HALF[1] - 0.05, 0.005])
WORKSPACE_HI = np.array([TABLE_HALF[0] + 0.05, TABLE_HALF[1] + 0.06, 0.30])
#: an object counts as between the fingers within this horizontal distance of the TCP.
GRASP_RADIUS = 0.03
_PHRASES = {"left": "to the left", "right": "to the right", "away": "away from the camera",
            "toward": "toward the camera"}
#: world direction -> (unit vector, phrase as seen from the front camera); the vectors are the core's
#: :data:`dppo_embodied.actions.PUSH_DIRECTIONS` (the bridge's push skill uses the same table)
DIRECTIONS: dict[str, tuple[tuple[float, float], str]] = {k: (v, _PHRASES[k]) for k, v in PUSH_DIRECTIONS.items()}
#: half extents (x, y) of the closed fingers in the gripper frame, metres; pushes use the y face.
PUSHER_HALF = (0.015, 0.012)


@dataclass
class Outcome:
    """Result of a primitive: ``ok`` and a one-line ``message`` for the model."""

    ok: bool
    message: str


class Controller:
    """Drive a :class:`TabletopScene`'s gripper with scripted primitives.

    Args:
        scene: the scene (a spec must be loaded).
        speed: free-space TCP speed, m/s.
        on_tick: called with the scene after every control tick.
    """

    def __init__(self, scene: TabletopScene, speed: float = SPEED,
                 on_tick: Callable[[TabletopScene], None] | None = None) -> None:
        self.scene = scene
        self.speed = speed
        self.on_tick = on_tick
        self.ticks = 0

    # ------------------------------------------------------------------------------------------------ motion
    def tick(self) -> None:
        """One control tick of physics."""
        self.scene.step(SUBSTEPS)
        self.ticks += 1
        if self.on_tick is not None:
            self.on_tick(self.scene)

    def wait(self, seconds: float) -> None:
        """Hold the gripper still for ``seconds``."""
        for _ in range(max(1, round(seconds / CONTROL_DT))):
            self.tick()

    def move_to(self, target: Sequence[float], speed: float | None = None) -> None:
        """Move the TCP in a straight line to ``target`` (clipped to the workspace) at ``speed`` m/s."""
        goal = np.clip(np.asarray(target, dtype=float), WORKSPACE_LO, WORKSPACE_HI)
        start = self.scene.gripper_pos
        dist = float(np.linalg.norm(goal - start))
        n = max(1, math.ceil(dist / ((speed or self.speed) * CONTROL_DT)))
        for k in range(1, n + 1):
            self.scene.data.mocap_pos[0] = start + (goal - start) * (k / n)
            self.tick()

    def path(self, waypoints: Sequence[Sequence[float]], speed: float | None = None) -> None:
        """Visit ``waypoints`` in order."""
        for w in waypoints:
            self.move_to(w, speed)

    def transit(self, x: float, y: float, z: float) -> None:
        """Go up to :data:`SAFE_Z`, across, then down to ``(x, y, z)``."""
        p = self.scene.gripper_pos
        top = max(SAFE_Z, p[2])
        self.path([(p[0], p[1], top), (x, y, top), (x, y, z)])

    def home(self) -> None:
        """Return to the rest pose behind the table (keeps any held object)."""
        hx, hy, hz = GRIPPER_HOME
        p = self.scene.gripper_pos
        if np.linalg.norm(p - np.array(GRIPPER_HOME)) < 1e-6:
            return
        top = max(SAFE_Z, p[2])
        self.path([(p[0], p[1], top), (hx, hy, top), (hx, hy, hz)])

    # ----------------------------------------------------------------------------------------- object helpers
    def object_above(self, i: int) -> int | None:
        """Index of an object resting on top of object ``i`` (within its footprint), else None."""
        sc = self.scene
        assert sc.spec is not None
        pi = sc.object_pos(i)
        top = pi[2] + sc.spec.objects[i].half_height
        for j in range(sc.n_objects):
            if j == i or j == sc.held:
                continue
            pj = sc.object_pos(j)
            bottom = pj[2] - sc.spec.objects[j].half_height
            if abs(bottom - top) < 0.015 and math.hypot(*(pj[:2] - pi[:2])) < sc.spec.objects[i].radius:
                return j
        return None

    def top_z(self, i: int) -> float:
        """Height of object ``i``'s top surface now, metres."""
        assert self.scene.spec is not None
        return float(self.scene.object_pos(i)[2] + self.scene.spec.objects[i].half_height)

    def object_near(self, point: np.ndarray, radius: float = 0.04) -> int | None:
        """The object whose centre is horizontally nearest to ``point`` within ``radius`` (top-most on ties)."""
        sc = self.scene
        best, best_key = None, None
        for j in range(sc.n_objects):
            if j == sc.held:
                continue
            pj = sc.object_pos(j)
            d = math.hypot(pj[0] - point[0], pj[1] - point[1])
            if d <= radius:
                key = (round(d / 0.01), -pj[2])
                if best_key is None or key < best_key:
                    best, best_key = j, key
        return best

    # --------------------------------------------------------------------------------------------- primitives
    def pick(self, i: int) -> Outcome:
        """Grasp object ``i`` from above and lift it to :data:`SAFE_Z`."""
        sc = self.scene
        assert sc.spec is not None
        name = sc.spec.objects[i].name
        if sc.held is not None:
            return Outcome(False, f"cannot pick the {name}: already holding the {sc.spec.objects[sc.held].name}")
        above = self.object_above(i)
        if above is not None:
            return Outcome(False, f"cannot pick the {name}: the {sc.spec.objects[above].name} is on top of it")
        if not sc.on_table(i):
            return Outcome(False, f"cannot pick the {name}: it is not on the table")
        p = sc.object_pos(i)
        hh = sc.spec.objects[i].half_height
        sc.set_gripper(sc.gripper_pos, closed=False)
        self.transit(p[0], p[1], p[2] + hh + 0.03)
        p = sc.object_pos(i)
        self.move_to((p[0], p[1], p[2] - 0.4 * hh), speed=0.3)
        p = sc.object_pos(i)
        if math.hypot(*(p[:2] - sc.gripper_pos[:2])) > GRASP_RADIUS:
            self.move_to((sc.gripper_pos[0], sc.gripper_pos[1], SAFE_Z))
            return Outcome(False, f"failed to grasp the {name}: it moved away")
        sc.attach(i)
        self.wait(0.06)
        self.move_to((p[0], p[1], SAFE_Z), speed=0.3)
        return Outcome(True, f"picked up the {name}")

    def place(self, x: float, y: float, surface_z: float) -> Outcome:
        """Lower the held object onto the surface at ``(x, y, surface_z)``, release it and lift."""
        sc = self.scene
        if sc.held is None or sc.spec is None:
            return Outcome(False, "cannot place: the gripper is not holding anything")
        i = sc.held
        o = sc.spec.objects[i]
        offset_z = sc.object_pos(i)[2] - sc.gripper_pos[2]
        tcp_z = surface_z + 0.004 + o.half_height - offset_z
        self.transit(x, y, max(tcp_z, WORKSPACE_LO[2]) + 0.04)
        self.move_to((x, y, tcp_z), speed=0.2)
        sc.detach()
        self.wait(0.1)
        self.move_to((x, y, SAFE_Z), speed=0.3)
        self.wait(0.2)
        where = "on the table" if surface_z < 0.005 else "on a surface"
        below = self.object_below(i)
        if below is not None:
            where = f"on the {sc.spec.objects[below].name}"
        if not sc.on_table(i):
            return Outcome(True, f"released the {o.name}; it fell off the table")
        return Outcome(True, f"placed the {o.name} {where}")

    def object_below(self, i: int) -> int | None:
        """Index of the object that object ``i`` rests on, else None."""
        for j in range(self.scene.n_objects):
            if j != i and self.object_above(j) == i:
                return j
        return None

    def push(self, start: Sequence[float], end: Sequence[float]) -> Outcome:
        """Lower the closed gripper at ``start`` (x, y) and sweep it along the table to ``end`` (x, y).

        The gripper turns so that the flat face of its closed fingers is perpendicular to the sweep (a stable
        push), and stops lowering on top of anything under it instead of pressing into it.
        """
        sc = self.scene
        if sc.held is not None and sc.spec is not None:
            return Outcome(False, f"cannot push while holding the {sc.spec.objects[sc.held].name}")
        start, end = np.asarray(start[:2], dtype=float), np.asarray(end[:2], dtype=float)
        d = end - start
        yaw = math.atan2(-d[0], d[1]) if np.linalg.norm(d) > 1e-6 else 0.0
        before = sc.object_positions()
        sc.set_gripper(sc.gripper_pos, closed=True)
        self.transit(start[0], start[1], max(PUSH_Z + 0.03, self._floor(start) + 0.03))
        sc.data.mocap_quat[0] = (math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2))
        z = max(PUSH_Z, self._floor(start))
        self.move_to((start[0], start[1], z), speed=0.2)
        self.move_to((end[0], end[1], z), speed=PUSH_SPEED)
        self.move_to((end[0], end[1], z + 0.06), speed=0.3)
        sc.data.mocap_quat[0] = (1.0, 0.0, 0.0, 0.0)
        sc.set_gripper(sc.gripper_pos, closed=False)
        self.wait(0.3)
        assert sc.spec is not None
        moved = [sc.spec.objects[j].name for j in range(sc.n_objects)
                 if np.linalg.norm(sc.object_positions()[j] - before[j]) > 0.01]
        if not moved:
            return Outcome(True, "pushed along the table; nothing moved")
        return Outcome(True, "pushed along the table; moved: " + ", ".join(moved))

    def _floor(self, xy: np.ndarray) -> float:
        """Height of the highest object top right under the pusher centre at ``xy`` (0 = the table).

        Objects the pusher only grazes are not counted: lowering next to them just nudges them aside.
        """
        sc = self.scene
        assert sc.spec is not None
        best = 0.0
        for j in range(sc.n_objects):
            p = sc.object_pos(j)
            if math.hypot(p[0] - xy[0], p[1] - xy[1]) < sc.spec.objects[j].half_width + 0.005:
                best = max(best, self.top_z(j) + 0.003)
        return best

    def push_object(self, i: int, direction: Sequence[float], distance: float) -> Outcome:
        """Push object ``i`` by ``distance`` metres along the horizontal unit vector ``direction``."""
        sc = self.scene
        assert sc.spec is not None
        d = np.asarray(direction[:2], dtype=float)
        d = d / (np.linalg.norm(d) or 1.0)
        p = sc.object_pos(i)
        o = sc.spec.objects[i]
        pusher = PUSHER_HALF[1]
        contact = o.half_width * (abs(d[0]) + abs(d[1]) if o.shape == "block" else 1.0)
        start = p[:2] - d * (o.radius + pusher + 0.02)
        end = p[:2] + d * (distance - contact - pusher)
        return self.push(start, end)

    def move_relative(self, dx: float, dy: float, dz: float, gripper: str | None) -> Outcome:
        """Move the TCP by (dx, dy, dz) metres (each clipped to :data:`MAX_MOVE`), then open/close."""
        sc = self.scene
        delta = np.clip([dx, dy, dz], -MAX_MOVE, MAX_MOVE)
        target = np.clip(sc.gripper_pos + delta, WORKSPACE_LO, WORKSPACE_HI)
        clipped = not np.allclose(target - sc.gripper_pos, [dx, dy, dz], atol=1e-6)
        self.move_to(target, speed=0.3)
        msg = f"moved to ({target[0] * 100:.0f}, {target[1] * 100:.0f}, {target[2] * 100:.0f}) cm"
        if clipped:
            msg += f" (clipped: at most {MAX_MOVE * 100:.0f} cm per axis inside the workspace)"
        if gripper == "close" and sc.held is None:
            j = self.object_near(sc.gripper_pos, GRASP_RADIUS)
            if j is not None and abs(sc.object_pos(j)[2] - sc.gripper_pos[2]) < 0.04 + sc.spec.objects[j].half_height:  # type: ignore[union-attr]
                sc.attach(j)
                msg += f"; grasped the {sc.spec.objects[j].name}"  # type: ignore[union-attr]
            else:
                sc.set_gripper(sc.gripper_pos, closed=True)
                msg += "; closed the gripper on nothing"
        elif gripper == "open":
            i = sc.detach()
            self.wait(0.1)
            if i is not None:
                msg += f"; released the {sc.spec.objects[i].name}"  # type: ignore[union-attr]
            else:
                msg += "; gripper open"
        return Outcome(True, msg)
