"""Registry lookups and camera geometry (back-projection and projection are inverse)."""

from __future__ import annotations

import numpy as np
import pytest

from dppo_embodied.errors import UnknownNameError
from dppo_embodied.geometry import CameraCalibration, mujoco_to_opencv_rotation
from dppo_embodied.registry import Registry


def test_registry_lazy_and_typed_errors() -> None:
    r: Registry[object] = Registry("robot")
    r.register("od", "collections:OrderedDict", help="ordered dict")
    assert "od" in r and r.names() == ["od"] and r.help("od") == "ordered dict"
    from collections import OrderedDict

    assert r.get("od") is OrderedDict
    with pytest.raises(UnknownNameError) as e:
        r.get("so101")
    assert "valid choices: od" in str(e.value)


def _looking_down_camera() -> CameraCalibration:
    # MuJoCo camera 1 m above the origin looking straight down: cam_xmat = identity (looks along -z world).
    rot = mujoco_to_opencv_rotation(np.eye(3))
    return CameraCalibration.from_fovy(128, 96, 45.0, np.array([0.0, 0.0, 1.0]), rot)


def test_backproject_projects_back() -> None:
    cam = _looking_down_camera()
    p = cam.backproject(0.3, 0.7, 0.8)
    x, y, z = cam.project(p)
    assert (x, y, z) == pytest.approx((0.3, 0.7, 0.8))
    assert p[2] == pytest.approx(0.2)  # 0.8 m below a camera at 1 m


def test_table_plane_fallback_matches_depth() -> None:
    cam = _looking_down_camera()
    hit = cam.intersect_plane(0.5, 0.5, 0.0)
    assert hit is not None and hit == pytest.approx([0.0, 0.0, 0.0], abs=1e-9)
    off = cam.intersect_plane(0.9, 0.1, 0.0)
    assert off == pytest.approx(cam.backproject(0.9, 0.1, 1.0))
    assert cam.intersect_plane(0.5, 0.5, 2.0) is None  # plane behind the camera
    assert CameraCalibration.from_dict(cam.to_dict()).backproject(0.2, 0.2, 1.0) == pytest.approx(
        cam.backproject(0.2, 0.2, 1.0))
