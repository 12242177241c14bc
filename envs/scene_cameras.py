"""The cameras of :class:`envs.scene.TabletopScene`: RGB, depth and segmentation renders, calibration, projection.

Renders are RGB ``(H, W, 3) uint8``, depth ``(H, W) float32`` metres (z-depth along the optical axis) and
segmentation ``(H, W) int16`` object indices (:data:`SEG_TABLE`, :data:`SEG_GRIPPER`, :data:`SEG_TARGET`,
:data:`SEG_NONE` for the rest). One renderer, created lazily, serves every camera.

Threads: the renderer is used under the scene's lock and its GL context is released after every use
(:func:`envs._mujoco.release_gl`), so any thread may render a scene or close it, whichever thread rendered it last
(an EGL context left current in one thread cannot be made current, nor freed, in another).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from dppo_embodied.errors import ConfigError, EnvError
from dppo_embodied.geometry import CameraCalibration, mujoco_to_opencv_rotation
from envs._mujoco import release_gl
from envs.mjcf import CAMERAS

SEG_NONE, SEG_TABLE, SEG_GRIPPER, SEG_TARGET = -1, -2, -3, -4


class SceneCameras:
    """Camera methods of the tabletop scene (a base class of :class:`envs.scene.TabletopScene`, which sets the
    attributes below)."""

    mj: Any
    model: Any
    data: Any
    width: int
    height: int
    held: int | None
    _renderer: Any
    _gl_lock: threading.RLock
    _scene_option: Any
    _geoms: list[list[int]]
    _geom_label: np.ndarray
    _cam: dict[str, int]

    @property
    def renderer(self) -> Any:
        """The (lazily created) MuJoCo renderer, shared by all cameras; use it inside :meth:`using_renderer`."""
        with self._gl_lock:
            if self._renderer is None:
                try:
                    self._renderer = self.mj.Renderer(self.model, self.height, self.width)
                except Exception as e:  # no usable headless GL
                    gl = os.environ.get("MUJOCO_GL", "(unset)")
                    raise EnvError(f"MuJoCo could not create an offscreen renderer with MUJOCO_GL={gl} ({e}); "
                                   "install EGL (apt-get install libegl1 libegl-mesa0) or use MUJOCO_GL=osmesa "
                                   "with libosmesa6") from e
                finally:
                    release_gl()  # the constructor leaves its context current in this thread
            return self._renderer

    @contextlib.contextmanager
    def using_renderer(self) -> Iterator[Any]:
        """The renderer, held by this thread for the block (the scene's lock), its GL context released after it."""
        with self._gl_lock:
            try:
                yield self.renderer
            finally:
                release_gl()

    def close_renderer(self) -> None:
        """Free the renderer (GL context), from any thread; safe to call twice (the next render makes a new one)."""
        with self._gl_lock:
            if self._renderer is not None:
                try:
                    self._renderer.close()
                finally:
                    self._renderer = None
                    release_gl()

    def _check_camera(self, camera: str) -> None:
        if camera not in CAMERAS:
            raise ConfigError(f"unknown camera {camera!r}; valid: {', '.join(CAMERAS)}")

    def render(self, camera: str = "front") -> np.ndarray:
        """RGB image ``(H, W, 3) uint8``."""
        self._check_camera(camera)
        with self.using_renderer() as r:
            r.update_scene(self.data, camera=camera, scene_option=self._scene_option)
            return r.render().copy()

    def render_depth(self, camera: str = "front", hide_robot: bool = False) -> np.ndarray:
        """Depth ``(H, W) float32`` in metres (z-depth along the optical axis).

        Args:
            camera: camera name.
            hide_robot: leave out the gripper and the object it holds (what is *behind* the robot), as used to
                turn a pointed pixel into a 3-D target.
        """
        self._check_camera(camera)
        with self.using_renderer() as r:
            r.enable_depth_rendering()
            opt, hidden = self._scene_option, []
            if hide_robot:
                opt = self.mj.MjvOption()
                opt.geomgroup[2] = 0
                if self.held is not None:
                    hidden = [g for g in self._geoms[self.held] if self.model.geom_group[g] == 0]
                    for g in hidden:
                        self.model.geom_group[g] = 3
            try:
                r.update_scene(self.data, camera=camera, scene_option=opt)
                return r.render().astype(np.float32)
            finally:
                r.disable_depth_rendering()
                for g in hidden:
                    self.model.geom_group[g] = 0

    def render_segmentation(self, camera: str = "front") -> np.ndarray:
        """``(H, W) int16`` labels: object index, or :data:`SEG_TABLE` / :data:`SEG_GRIPPER` / :data:`SEG_TARGET` /
        :data:`SEG_NONE`."""
        self._check_camera(camera)
        with self.using_renderer() as r:
            r.enable_segmentation_rendering()
            try:
                r.update_scene(self.data, camera=camera, scene_option=self._scene_option)
                seg = r.render()
            finally:
                r.disable_segmentation_rendering()
        ids, types = seg[..., 0], seg[..., 1]
        out = np.full(ids.shape, SEG_NONE, dtype=np.int16)
        geom = (types == int(self.mj.mjtObj.mjOBJ_GEOM)) & (ids >= 0)
        out[geom] = self._geom_label[ids[geom]]
        return out

    def calibration(self, camera: str = "front") -> CameraCalibration:
        """Intrinsics and extrinsics of ``camera`` (OpenCV convention, metres)."""
        self._check_camera(camera)
        cid = self._cam[camera]
        rot = mujoco_to_opencv_rotation(self.data.cam_xmat[cid])
        return CameraCalibration.from_fovy(self.width, self.height, float(self.model.cam_fovy[cid]),
                                           self.data.cam_xpos[cid].copy(), rot)

    def project(self, point: np.ndarray, camera: str = "front") -> tuple[float, float]:
        """World point -> normalized image ``(x, y)``."""
        x, y, _ = self.calibration(camera).project(point)
        return x, y
