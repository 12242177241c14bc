"""Point → 3-D (depth and table-plane fallback) and action → waypoint sequences, skills."""

from __future__ import annotations

import numpy as np
import pytest

from dppo_embodied.actions import (
    PUSH_DIRECTIONS,
    DoneAction,
    MoveAction,
    PointAction,
    SkillAction,
    invalid_push_target,
)
from dppo_embodied.parsing import NoAnswer
from robot_bridge.pose import EEPose
from robot_bridge.skills import SkillLibrary, sim_locator
from robot_bridge.targets import MotionConfig, MotionPlanner, depth_at, point_to_world
from tests.bridge.fakes import HOME, FakeRobot, overhead_calibration


def test_point_to_world_depth_and_plane() -> None:
    robot = FakeRobot(size=64)
    cal = robot.cal
    depth = robot.depth()
    x, y, _ = cal.project(np.array([0.05, 0.05, 0.04]))  # top of the box
    p, src = point_to_world(cal, x, y, depth)
    assert src == "depth" and np.allclose(p, [0.05, 0.05, 0.04], atol=0.006)
    x, y, _ = cal.project(np.array([-0.1, 0.08, 0.0]))
    p, src = point_to_world(cal, x, y, None, plane_z=0.0)
    assert src == "plane" and np.allclose(p, [-0.1, 0.08, 0.0], atol=1e-9)
    p, src = point_to_world(cal, x, y, np.zeros_like(depth))  # invalid depth -> plane fallback
    assert src == "plane"


def test_depth_pixel_first_then_patch_median() -> None:
    d = np.full((10, 10), 0.5, dtype=np.float32)
    d[2, 2] = 0.3
    assert depth_at(d, 0.25, 0.25, patch=3) == pytest.approx(0.3)  # a valid pixel wins over its window
    d[4, 4] = np.nan
    d[5, 5] = 0.0
    d[4, 5] = 99.0
    assert depth_at(d, 0.45, 0.45, patch=3) == pytest.approx(0.5)  # hole -> median of the valid neighbours
    assert depth_at(np.zeros((4, 4)), 0.5, 0.5) is None


def test_ray_missing_the_table() -> None:
    side = overhead_calibration()
    side.world_from_camera[:3, :3] = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])  # looks horizontally
    assert point_to_world(side, 0.5, 0.2, None) is None  # above the horizon
    mp = MotionPlanner(calibration=side)
    assert isinstance(mp.plan(PointAction(0.5, 0.2), EEPose(0, 0, 0.1), 0.0), NoAnswer)


def planner(**kw: object) -> MotionPlanner:
    return MotionPlanner(MotionConfig(home=HOME, **kw), overhead_calibration(64), ttl_s=1.5,  # type: ignore[arg-type]
                         speed_m_s=0.15)


def test_grasp_sequence_shape_and_ttls() -> None:
    robot = FakeRobot()
    mp = planner()
    x, y, _ = robot.cal.project(np.array([0.05, 0.05, 0.04]))
    wps = mp.plan(PointAction(x, y, "grasp"), EEPose(*HOME, 0.0), t_obs=100.0, decision=3, depth=robot.depth())
    assert not isinstance(wps, NoAnswer)
    labels = [w.label for w in wps]
    assert labels[:3] == ["up", "across", "approach"] and "descend" in labels and "close" in labels
    assert labels[-1] == "home" and wps[-1].pose.gripper == 1.0
    close = wps[labels.index("close")]
    assert close.pose.z == pytest.approx(0.04 - mp.config.grasp_depth_m, abs=0.006) and close.dwell_s > 0
    assert all(w.t_obs == 100.0 and w.decision == 3 for w in wps)
    ttls = [w.ttl_s for w in wps]
    assert ttls == sorted(ttls) and ttls[0] > 1.5  # base TTL plus planned time, non-decreasing
    assert mp.plan(PointAction(x, y, "grasp"), EEPose(*HOME, 1.0), 0.0, holding=True).reason.startswith(
        "cannot grasp")  # type: ignore[union-attr]


def test_place_push_move_to_and_preconditions() -> None:
    mp = planner()
    cal = mp.calibration
    assert cal is not None
    x, y, _ = cal.project(np.array([-0.1, 0.0, 0.0]))
    assert isinstance(mp.plan(PointAction(x, y, "place"), EEPose(*HOME, 0.0), 0.0), NoAnswer)
    place = mp.plan(PointAction(x, y, "place"), EEPose(*HOME, 1.0), 0.0, holding=True)
    assert not isinstance(place, NoAnswer)
    release = next(w for w in place if w.label == "release")
    assert release.pose.gripper == 0.0 and release.pose.x == pytest.approx(-0.1, abs=1e-6)
    push = mp.plan(PointAction(x, y, "push"), EEPose(0.05, 0.0, 0.05, 0.0), 0.0, holding=False)
    assert not isinstance(push, NoAnswer)
    sweep = next(w for w in push if w.label == "sweep")
    assert sweep.pose.z == pytest.approx(mp.config.push_z_m) and sweep.speed_m_s == mp.config.push_speed
    assert isinstance(mp.plan(PointAction(x, y, "push"), EEPose(0, 0, 0.1, 1.0), 0.0, holding=True), NoAnswer)
    hover = mp.plan(PointAction(x, y, "move_to"), EEPose(*HOME, 0.0), 0.0)
    assert not isinstance(hover, NoAnswer)
    assert hover[-1].pose.z == pytest.approx(mp.config.hover_m) and hover[-1].label == "hover"


def test_move_is_clipped_and_relative_to_capture_pose() -> None:
    mp = planner(max_move_cm=5.0)
    now, seen = EEPose(0.02, 0.0, 0.1, 0.0), EEPose(0.0, 0.0, 0.1, 0.0)
    wps = mp.plan(MoveAction(100.0, -2.0, 0.0, "close"), now, 0.0, state_obs=seen)
    assert not isinstance(wps, NoAnswer)
    assert wps[0].pose.x == pytest.approx(0.05) and wps[0].pose.y == pytest.approx(-0.02)
    assert wps[-1].pose.gripper == 1.0 and wps[-1].label == "close"
    assert mp.plan(DoneAction(), now, 0.0) == []


def test_point_needs_calibration() -> None:
    mp = MotionPlanner()
    r = mp.plan(PointAction(0.5, 0.5), EEPose(0, 0, 0.1), 0.0)
    assert isinstance(r, NoAnswer) and "calibrated" in r.reason


def test_skills_with_a_locator() -> None:
    objs = {"red_block": (0.05, 0.05, 0.04), "target": (-0.1, 0.1, 0.0)}
    lib = SkillLibrary(locator=objs.get, home=HOME)
    assert set(lib.names) == {"pick", "place", "push", "home", "open", "close", "lift"}
    mp = planner()
    mp.skills = lib
    pick = mp.plan(SkillAction("pick", "red_block"), EEPose(*HOME, 0.0), 0.0)
    assert not isinstance(pick, NoAnswer) and any(w.label == "close" for w in pick)
    assert isinstance(mp.plan(SkillAction("pick", "blue_ball"), EEPose(*HOME, 0.0), 0.0), NoAnswer)
    assert isinstance(mp.plan(SkillAction("pick", None), EEPose(*HOME, 0.0), 0.0), NoAnswer)
    place = mp.plan(SkillAction("place", target="target"), EEPose(*HOME, 1.0), 0.0)
    assert not isinstance(place, NoAnswer) and any(w.pose.x == pytest.approx(-0.1) for w in place)
    push = mp.plan(SkillAction("push", "red_block", "left"), EEPose(*HOME, 0.0), 0.0)
    assert not isinstance(push, NoAnswer)
    sweep = next(w for w in push if w.label == "sweep")
    assert sweep.pose.x < 0.05 - 0.03  # moved the block to the left
    bad = mp.plan(SkillAction("push", "red_block", "up"), EEPose(*HOME, 0.0), 0.0)
    assert isinstance(bad, NoAnswer) and "invalid push target" in bad.reason
    home = mp.plan(SkillAction("home"), EEPose(0.1, 0.0, 0.05, 0.0), 0.0)
    assert not isinstance(home, NoAnswer) and home[-1].pose.xyz.tolist() == pytest.approx(list(HOME))
    lift = mp.plan(SkillAction("lift"), EEPose(0.1, 0.0, 0.05, 0.0), 0.0)
    assert not isinstance(lift, NoAnswer) and lift[0].pose.z == pytest.approx(0.13)


def test_skills_without_locator_are_limited() -> None:
    lib = SkillLibrary()
    assert set(lib.names) == {"open", "close", "lift"}
    mp = planner()
    mp.skills = lib
    r = mp.plan(SkillAction("pick", "red_block"), EEPose(*HOME, 0.0), 0.0)
    assert isinstance(r, NoAnswer) and "unknown skill" in r.reason
    assert isinstance(MotionPlanner().plan(SkillAction("open"), EEPose(0, 0, 0.1), 0.0), NoAnswer)


def test_sim_locator_reads_scene_state() -> None:
    class Twin:
        task = type("T", (), {"target": (0.1, -0.05)})()

        def scene_state(self) -> dict[str, object]:
            return {"objects": {"red_block": [0.02, 0.03, 0.02]}}

    loc = sim_locator(Twin())
    assert loc is not None
    assert loc("red block") == pytest.approx((0.02, 0.03, 0.04))
    assert loc("target") == pytest.approx((0.1, -0.05, 0.0))
    assert loc("blue_ball") is None
    assert sim_locator(object()) is None


@pytest.mark.parametrize("direction", sorted(PUSH_DIRECTIONS))
def test_push_sweeps_along_the_cores_direction_table(direction: str) -> None:
    """The bridge pushes along the same unit vectors as the sim env (dppo_embodied.actions.PUSH_DIRECTIONS)."""
    lib = SkillLibrary(locator={"red_block": (0.05, 0.05, 0.04)}.get, home=HOME)
    mp = planner()
    mp.skills = lib
    push = mp.plan(SkillAction("push", "red_block", direction), EEPose(*HOME, 0.0), 0.0)
    assert not isinstance(push, NoAnswer)
    lower = next(w for w in push if w.label == "lower")
    sweep = next(w for w in push if w.label == "sweep")
    step = np.array([sweep.pose.x - lower.pose.x, sweep.pose.y - lower.pose.y])
    assert step / np.linalg.norm(step) == pytest.approx(np.array(PUSH_DIRECTIONS[direction]), abs=1e-9)
    bad = mp.plan(SkillAction("push", "red_block", "up"), EEPose(*HOME, 0.0), 0.0)
    assert isinstance(bad, NoAnswer) and bad.reason == invalid_push_target("up")
