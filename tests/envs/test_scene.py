"""Scene specs, the MuJoCo scene (rendering, segmentation, depth, calibration) and the motion primitives."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pytest

from dppo_embodied.errors import ConfigError, EnvError
from envs.control import MAX_MOVE, Controller
from envs.scene import SEG_GRIPPER, SEG_TABLE, TabletopScene
from envs.spec import MAX_OBJECTS, TABLE_HALF, ObjectSpec, SceneSpec, sample_scene

pytest.importorskip("mujoco")


def test_sample_scene_is_deterministic_and_valid() -> None:
    for seed in range(30):
        a, b = sample_scene(seed, (2, 8), distractors=1, stacks=1), sample_scene(seed, (2, 8), distractors=1, stacks=1)
        assert a.to_dict() == b.to_dict()
        assert 2 <= len(a.objects) <= 8
        slugs = [o.slug for o in a.objects]
        assert len(set(slugs)) == len(slugs)
        table = [o for o in a.objects if o.on is None]
        for i, o in enumerate(table):
            assert abs(o.x) + o.radius <= TABLE_HALF[0] and abs(o.y) + o.radius <= TABLE_HALF[1]
            for p in table[i + 1:]:
                assert np.hypot(o.x - p.x, o.y - p.y) >= o.radius + p.radius
    assert sample_scene(1).to_dict() != sample_scene(2).to_dict()


def test_distractors_share_an_attribute_with_the_anchor() -> None:
    for seed in range(20):
        for k in (0, 2):
            spec = sample_scene(seed, 5, distractors=k)
            first = spec.objects[spec.anchor]
            alike = [o for o in spec.objects if o is not first and (o.color == first.color or o.shape == first.shape)]
            assert len(alike) >= k


@pytest.mark.parametrize("bad", [{"n_objects": 0}, {"n_objects": (3, 2)}, {"n_objects": 9},
                                 {"shapes": ("cone",)}, {"distractors": -1}])
def test_sample_scene_rejects_bad_values(bad: dict) -> None:
    with pytest.raises(ConfigError):
        sample_scene(0, **bad)


def test_specs_validate() -> None:
    with pytest.raises(ConfigError, match="colour"):
        ObjectSpec("pink", "block", 3, 3, 0.1, 0, 0)
    o = ObjectSpec("red", "block", 3, 3, 0.1, 0, 0)
    with pytest.raises(ConfigError, match="unique"):
        SceneSpec([o, ObjectSpec("red", "block", 4, 4, 0.1, 0.1, 0)])
    with pytest.raises(ConfigError):
        SceneSpec([])
    spec = SceneSpec([o])
    assert spec.index("red block") == 0 and spec.index("red_block") == 0
    with pytest.raises(ConfigError, match="red_block"):
        spec.index("blue ball")


def test_render_depth_segmentation(scene: TabletopScene) -> None:
    spec = sample_scene(3, 5)
    scene.load(spec)
    rgb, depth, seg = scene.render(), scene.render_depth(), scene.render_segmentation()
    assert rgb.shape == (96, 96, 3) and rgb.dtype == np.uint8
    assert depth.shape == (96, 96) and depth.dtype == np.float32 and np.isfinite(depth).all()
    assert seg.shape == (96, 96)
    labels = set(np.unique(seg).tolist())
    assert SEG_TABLE in labels and SEG_GRIPPER in labels
    assert set(range(len(spec.objects))) <= labels | {k for k in range(5) if k not in labels}
    assert (seg >= 0).sum() > 20
    # an object's pixels have the object's colour family: the red channel dominates for red objects
    top = scene.render("top")
    assert top.shape == (96, 96, 3) and not np.array_equal(top, rgb)
    with pytest.raises(ConfigError, match="camera"):
        scene.render("side")


def test_same_seed_same_frames(scene: TabletopScene) -> None:
    frames = []
    for _ in range(2):
        scene.load(sample_scene(11, 4))
        Controller(scene).pick(0)
        frames.append(scene.render())
    assert np.array_equal(frames[0], frames[1])


def test_depth_backprojection_recovers_object_tops(scene: TabletopScene) -> None:
    """Normalized point -> depth -> 3-D lands on the object (the point->3D path of the envs and the bridge)."""
    scene.load(sample_scene(5, 4))
    cal = scene.calibration()
    depth = scene.render_depth()
    seg = scene.render_segmentation()
    for i in range(scene.n_objects):
        top = scene.object_pos(i) + np.array([0, 0, scene.spec.objects[i].half_height])
        x, y, z_cam = cal.project(top)
        u, v = int(x * 96), int(y * 96)
        if seg[v, u] != i:
            continue  # occluded
        p = cal.backproject(x, y, float(depth[v, u]))
        assert np.linalg.norm(p[:2] - top[:2]) < 0.02
        assert abs(float(depth[v, u]) - z_cam) < 0.02


def test_calibration_matches_the_renderer(scene: TabletopScene) -> None:
    scene.load(sample_scene(2, 3))
    cal = scene.calibration()
    assert cal.width == 96 and cal.fx > 0
    # the table centre projects inside the image and back onto the table plane
    x, y, _ = cal.project(np.zeros(3))
    assert 0 < x < 1 and 0 < y < 1
    p = cal.intersect_plane(x, y, 0.0)
    assert p is not None and np.allclose(p, 0.0, atol=1e-6)


def test_pick_place_stack_and_push(scene: TabletopScene) -> None:
    spec = sample_scene(7, 3, shapes=("block", "cylinder"))
    scene.load(spec)
    ctl = Controller(scene)
    assert ctl.pick(0).ok and scene.held == 0
    assert scene.object_pos(0)[2] > 0.1
    pb = scene.object_pos(1)
    out = ctl.place(pb[0], pb[1], ctl.top_z(1))
    assert out.ok and scene.held is None
    scene.settle(1.0)
    assert ctl.object_below(0) == 1
    assert not ctl.pick(1).ok  # something is on top of it
    p2 = scene.object_pos(2)
    d = np.array([1.0, 0.0]) if p2[0] < 0 else np.array([-1.0, 0.0])
    before = scene.object_pos(2)
    ctl.push_object(2, d, 0.06)
    moved = scene.object_pos(2) - before
    assert 0.04 < float(moved[:2] @ d) < 0.09


def test_relative_moves_are_clipped(scene: TabletopScene) -> None:
    scene.load(sample_scene(8, 2))
    ctl = Controller(scene)
    start = scene.gripper_pos
    out = ctl.move_relative(0.5, 0.0, 0.0, None)
    assert "clipped" in out.message
    assert scene.gripper_pos[0] - start[0] == pytest.approx(MAX_MOVE, abs=1e-6)


def test_bad_object_index_is_typed(scene: TabletopScene) -> None:
    scene.load(sample_scene(1, 2))
    with pytest.raises(EnvError, match="out of range"):
        scene.object_pos(MAX_OBJECTS)
    with pytest.raises(ConfigError):
        TabletopScene(8)


def _in_thread(fn: Callable[[], object], hold: threading.Event | None = None) -> object:
    """``fn()`` run in a new thread (kept alive until ``hold`` is set, if given); its result or exception."""
    out: list[object] = []
    done = threading.Event()

    def run() -> None:
        try:
            out.append(fn())
        except Exception as e:  # handed back to the test
            out.append(e)
        done.set()
        if hold is not None:
            hold.wait(30)

    threading.Thread(target=run, daemon=True).start()
    assert done.wait(60)
    if isinstance(out[0], Exception):
        raise out[0]
    return out[0]


def test_a_scene_renders_and_closes_from_any_thread() -> None:
    """Regression (EGL_BAD_ACCESS closing a renderer): an EGL context is current in one thread at a time, and the
    closed-loop suite's episode threads, the training env pool, the bridge's camera thread and the garbage collector
    each may use a scene another thread rendered last; every use now releases the context."""
    sc = TabletopScene(64)
    sc.load(sample_scene(3, 3))
    first = sc.render()  # the main thread renders first
    hold = threading.Event()
    try:
        assert np.array_equal(_in_thread(sc.render, hold), first)  # a live thread renders next ...
        assert np.array_equal(sc.render(), first)  # ... and the main thread again while that thread lives
        depth = _in_thread(sc.render_depth)  # a thread that has ended rendered last ...
        sc.close()  # ... the main thread frees the context
        assert np.array_equal(_in_thread(sc.render), first)  # a new renderer, made by another (ended) thread
        assert np.allclose(sc.render_depth(), depth)
        _in_thread(sc.close)  # freed by a thread that did not render last
        sc.close()  # twice is harmless
    finally:
        hold.set()
        sc.close()


def test_an_env_made_in_one_thread_closes_in_another() -> None:
    """A pooled env (made and rendered by the trainer's thread) freed by an episode thread, and the reverse."""
    import envs

    env = envs.make("dppo/TabletopPick-v0")
    env.reset(seed=1)
    _in_thread(env.close)
    made = _in_thread(lambda: envs.make("dppo/TabletopPick-v0"))
    _in_thread(lambda: made.reset(seed=1))  # type: ignore[attr-defined]
    made.close()  # type: ignore[attr-defined]
