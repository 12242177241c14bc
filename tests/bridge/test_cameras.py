"""Cameras: latest-frame thread (freshness, frozen feeds, reconnect), specs, file and robot cameras."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dppo_embodied.errors import ConfigError
from robot_bridge.cameras import LatestFrame, make_camera, parse_spec
from robot_bridge.cameras.base import CameraError, StaleFrameError
from robot_bridge.cameras.sim import RobotCamera
from robot_bridge.cameras.video import VideoFileCamera
from tests.bridge.fakes import FakeRobot, ScriptedCamera


def test_latest_frame_keeps_only_the_newest() -> None:
    cam = ScriptedCamera(fps=100)
    with LatestFrame(cam, max_age_s=0.5) as lf:
        first = lf.wait_first(2.0)
        time.sleep(0.1)
        newest = lf.read_latest()
        assert newest.index > first.index + 3
        assert newest.age() < 0.1
    assert not cam.connected  # disconnected by the capture thread on stop


def test_stale_frames_are_refused() -> None:
    cam = ScriptedCamera(fps=100)
    with LatestFrame(cam, max_age_s=0.1) as lf:
        lf.wait_first(2.0)
        cam.stall.set()
        time.sleep(0.2)
        with pytest.raises(StaleFrameError, match="old"):
            lf.read_latest()
        cam.stall.clear()
        time.sleep(0.1)
        assert lf.read_latest().age() < 0.1


def test_no_frame_yet_is_stale() -> None:
    lf = LatestFrame(ScriptedCamera(), max_age_s=0.1)
    with pytest.raises(StaleFrameError, match="not delivered"):
        lf.read_latest()


def test_frozen_feed_detected() -> None:
    cam = ScriptedCamera(fps=200)
    with LatestFrame(cam, max_age_s=0.1, max_identical=5) as lf:
        lf.wait_first(2.0)
        cam.freeze = True
        time.sleep(0.3)
        with pytest.raises(StaleFrameError, match="identical"):
            lf.read_latest()
        cam.freeze = False
        time.sleep(0.05)
        lf.read_latest()


def test_read_failures_reconnect_and_recover() -> None:
    cam = ScriptedCamera(fps=200)
    cam.fail = 6
    with LatestFrame(cam, max_age_s=1.0, reconnect_after=3) as lf:
        frame = lf.wait_first(5.0)
        assert frame is not None and cam.fail == 0


@pytest.mark.parametrize(("spec", "kind", "target"), [
    ("sim", "sim", "front"), ("sim:top", "sim", "top"), ("0", "opencv", "0"),
    ("/dev/video2", "opencv", "/dev/video2"),
    ("opencv:1", "opencv", "1"), ("rtsp://cam/stream", "opencv", "rtsp://cam/stream"),
    ("video:a.mp4", "video", "a.mp4"),
    ("clip.MP4", "video", "clip.MP4"), ("lerobot:opencv:0", "lerobot", "opencv:0"),
])
def test_parse_spec(spec: str, kind: str, target: str) -> None:
    assert parse_spec(spec) == (kind, target)


@pytest.mark.parametrize("spec", ["", "   ", "webcam", "foo:bar"])
def test_parse_spec_errors(spec: str) -> None:
    with pytest.raises(ConfigError, match="camera"):
        parse_spec(spec)


def test_sim_spec_needs_a_robot() -> None:
    with pytest.raises(ConfigError, match="robot"):
        make_camera("sim")


def test_robot_camera_reads_image_and_depth() -> None:
    robot = FakeRobot(size=48)
    cam = make_camera("sim:front", robot=robot)
    assert isinstance(cam, RobotCamera)
    cam.connect()
    f = cam.read()
    assert f.image.shape == (48, 48, 3) and f.depth is not None and f.depth.shape == (48, 48)
    with pytest.raises(CameraError, match="no camera 'side'"):
        RobotCamera(robot, "side").connect()


def test_still_image_camera(tmp_path: Path) -> None:
    p = tmp_path / "scene.png"
    Image.fromarray(np.full((20, 30, 3), 7, dtype=np.uint8)).save(p)
    cam = make_camera(str(p), fps=100)
    assert isinstance(cam, VideoFileCamera)
    cam.connect()
    f1, f2 = cam.read(), cam.read()
    assert f1.image.shape == (20, 30, 3) and f2.index == 1 and f2.t_capture > f1.t_capture
    cam.disconnect()
    with pytest.raises(CameraError, match="not connected"):
        cam.read()


def test_video_file_camera_loops(tmp_path: Path) -> None:
    cv2 = pytest.importorskip("cv2")
    p = tmp_path / "clip.avi"
    w = cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (32, 24))
    for i in range(3):
        w.write(np.full((24, 32, 3), 40 * i, dtype=np.uint8))
    w.release()
    cam = VideoFileCamera(p, loop=True, realtime=False)
    cam.connect()
    means = [float(cam.read().image.mean()) for _ in range(5)]
    cam.disconnect()
    assert means[3] == pytest.approx(means[0], abs=3) and means[1] > means[0]
    once = VideoFileCamera(p, loop=False, realtime=False)
    once.connect()
    for _ in range(3):
        once.read()
    with pytest.raises(CameraError, match="ended"):
        once.read()
    with pytest.raises(CameraError, match="does not exist"):
        VideoFileCamera(tmp_path / "none.mp4").connect()


def test_opencv_camera_bad_device_is_a_clear_error() -> None:
    pytest.importorskip("cv2")
    cam = make_camera("opencv:/nonexistent")
    with pytest.raises(CameraError, match="cannot open camera"):
        cam.connect()


def test_lerobot_camera_adapter_with_a_lerobot_like_camera() -> None:
    from robot_bridge.cameras.lerobot import LeRobotCamera

    class Cfg:
        use_depth = True

    class LikeRealSense:
        config = Cfg()
        is_connected = False

        def connect(self) -> None:
            self.is_connected = True

        def async_read(self, timeout_ms: float = 200) -> np.ndarray:
            return np.zeros((6, 8, 3), dtype=np.uint8)

        def read_depth(self) -> np.ndarray:
            return np.full((6, 8), 750, dtype=np.uint16)  # millimetres

        def disconnect(self) -> None:
            self.is_connected = False

    cam = LeRobotCamera(camera=LikeRealSense(), name="wrist")
    cam.connect()
    f = cam.read()
    assert f.camera == "wrist" and f.image.shape == (6, 8, 3)
    assert f.depth is not None and float(f.depth[0, 0]) == pytest.approx(0.75)
    cam.disconnect()
