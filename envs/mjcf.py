"""The asset-free MJCF of the MuJoCo tabletop (:class:`envs.scene.TabletopScene` compiles it once): table, target
disc, the ``front``, ``top`` and ``close`` cameras, the mocap gripper and :data:`~envs.spec.MAX_OBJECTS` object
slots."""

from __future__ import annotations

import numpy as np

from envs.spec import MAX_OBJECTS, TABLE_HALF

#: radius of the flat target marker (a white disc on the table), metres
TARGET_RADIUS = 0.03
#: camera name -> (position, look-at point, fovy degrees)
CAMERAS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float], float]] = {
    "front": ((0.0, -0.38, 0.50), (0.0, 0.03, 0.0), 55.0),
    "top": ((0.0, 0.0, 0.65), (0.0, 0.0001, 0.0), 45.0),
    # the front view moved in until the table fills the frame: objects 2-3x larger than in "front" (the tiny VLM's
    # question camera, docs/lab/dppo-value.md section 16)
    "close": ((0.0, -0.26, 0.40), (0.0, 0.01, 0.0), 48.0),
}
TIMESTEP = 0.004
#: the gripper TCP rests here between tasks
GRIPPER_HOME = (0.0, 0.21, 0.16)
FINGER_OPEN, FINGER_CLOSED = 0.044, 0.009
_PARK = (5.0, 5.0, 1.0)


def _xyaxes(pos: tuple[float, float, float], target: tuple[float, float, float]) -> str:
    f = np.subtract(target, pos, dtype=float)
    f /= np.linalg.norm(f)
    x = np.cross(f, [0.0, 0.0, 1.0])
    x = x / np.linalg.norm(x) if np.linalg.norm(x) > 1e-9 else np.array([1.0, 0.0, 0.0])
    y = np.cross(-f, x)
    return " ".join(f"{v:.6f}" for v in (*x, *y))


def build_mjcf(image_size: int = 96, shadows: bool = False) -> str:
    """The tabletop MJCF (asset-free), with :data:`MAX_OBJECTS` object slots and both cameras."""
    cams = "\n".join(
        f'    <camera name="{n}" pos="{p[0]} {p[1]} {p[2]}" xyaxes="{_xyaxes(p, t)}" fovy="{fovy}"/>'
        for n, (p, t, fovy) in CAMERAS.items())
    slots = []
    for i in range(MAX_OBJECTS):
        slots.append(
            f'    <body name="obj{i}" pos="{_PARK[0] + i * 0.2} {_PARK[1]} {_PARK[2]}" gravcomp="1">\n'
            f'      <freejoint name="obj{i}_joint"/>\n'
            f'      <geom name="obj{i}_box" type="box" size="0.02 0.02 0.02" group="3" contype="3" conaffinity="3" '
            f'mass="0.1"/>\n'
            f'      <geom name="obj{i}_cylinder" type="cylinder" size="0.02 0.02" group="3" contype="3" '
            f'conaffinity="3" mass="0"/>\n'
            f'      <geom name="obj{i}_sphere" type="sphere" size="0.02" group="3" contype="3" conaffinity="3" '
            f'mass="0" condim="6" friction="0.8 0.01 0.003"/>\n'
            f'    </body>')
    hx, hy = TABLE_HALF
    shadow = "true" if shadows else "false"
    return f"""<mujoco model="dppo_tabletop">
  <option timestep="{TIMESTEP}" integrator="implicitfast" cone="elliptic">
    <!-- geom sizes and finger positions change at run time: the compile-time per-body BVH would be stale -->
    <flag midphase="disable"/>
  </option>
  <visual>
    <quality shadowsize="{2048 if shadows else 0}"/>
    <global offwidth="{max(image_size, 64)}" offheight="{max(image_size, 64)}"/>
    <headlight ambient="0.4 0.4 0.4" diffuse="0.35 0.35 0.35" specular="0.05 0.05 0.05"/>
    <map znear="0.01" zfar="50"/>
  </visual>
  <default>
    <geom friction="0.7 0.01 0.001" solref="0.01 1" condim="3"/>
  </default>
  <worldbody>
    <light name="sun" pos="0.2 -0.3 1.5" dir="-0.1 0.2 -1" directional="true" castshadow="{shadow}"
           diffuse="0.35 0.35 0.35"/>
    <geom name="floor" type="plane" size="3 3 0.1" pos="0 0 -0.4" rgba="0.22 0.23 0.26 1"/>
    <geom name="table" type="box" size="{hx} {hy} 0.02" pos="0 0 -0.02" rgba="0.62 0.52 0.40 1"/>
    <geom name="target" type="cylinder" size="{TARGET_RADIUS} 0.0005" pos="0 0 0.0006" rgba="0.97 0.97 0.97 1"
          contype="0" conaffinity="0" group="3"/>
{cams}
    <body name="gripper" mocap="true" pos="{GRIPPER_HOME[0]} {GRIPPER_HOME[1]} {GRIPPER_HOME[2]}">
      <geom name="palm" type="box" size="0.055 0.014 0.010" pos="0 0 0.080" rgba="0.25 0.25 0.28 1"
            contype="2" conaffinity="2" group="2"/>
      <geom name="wrist" type="cylinder" size="0.010 0.04" pos="0 0 0.127" rgba="0.35 0.35 0.38 1"
            contype="0" conaffinity="0" group="2"/>
      <geom name="finger_l" type="box" size="0.006 0.012 0.035" pos="-{FINGER_OPEN} 0 0.035"
            rgba="0.15 0.15 0.17 1" contype="0" conaffinity="0" group="2"/>
      <geom name="finger_r" type="box" size="0.006 0.012 0.035" pos="{FINGER_OPEN} 0 0.035"
            rgba="0.15 0.15 0.17 1" contype="0" conaffinity="0" group="2"/>
      <!-- the closed fingers collide as one solid paddle (two thin boxes squeeze round objects sideways); compiled
           collidable (the scene switches it off until the gripper closes on nothing) -->
      <geom name="pusher" type="box" size="0.015 0.012 0.035" pos="0 0 0.035" contype="2" conaffinity="2"
            group="3" rgba="0 0 0 0"/>
    </body>
{chr(10).join(slots)}
  </worldbody>
</mujoco>
"""
