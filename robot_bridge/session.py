"""One bridge session: robot + camera thread + model client + safety + executor + planner (+ recorder), wired
together and torn down in the right order (the robot always gets a final hold, then disconnects).

    cfg = BridgeConfig(robot="sim", server="http://127.0.0.1:8000/v1", task="pick red_block")
    with Bridge(cfg) as bridge:
        result = bridge.run_episode()
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dppo_embodied.client import ChatClient, ClientConfig
from dppo_embodied.errors import ConfigError
from dppo_embodied.geometry import CameraCalibration
from robot_bridge.cameras import LatestFrame, make_camera
from robot_bridge.estop import EStopServer
from robot_bridge.executor import Executor
from robot_bridge.planner import Decision, EpisodeResult, Planner, PlannerConfig
from robot_bridge.robots import BridgeRobot, make_robot
from robot_bridge.safety import Safety, SafetyConfig
from robot_bridge.skills import SkillLibrary, sim_locator
from robot_bridge.targets import MotionConfig, MotionPlanner

logger = logging.getLogger(__name__)


@dataclass
class BridgeConfig:
    """Everything ``dppo bridge`` needs (YAML keys = these fields; nested sections for planner/safety/motion).

    Attributes:
        robot: registered robot name (``sim``, ``so100``, ``so101``, ``koch``).
        robot_args: keyword arguments of the robot (``seed``, ``image_size`` for sim; ``port``, ``id``, ``urdf``).
        camera: camera spec (default: the robot's, ``sim:front`` for the twin).
        camera_fps: capture rate of the camera thread.
        server: model server API root (``http://HOST:PORT/v1``).
        model: served model id (``None`` = the first one of ``GET /v1/models``).
        api_key: bearer token (``None`` = ``$DPPO_API_KEY`` / ``$OPENAI_API_KEY``).
        task: the instruction; for the twin also a compact task (``"pick red_block"``); empty = the twin picks
            ``pick <first object>``.
        episodes: how many episodes to run.
        seed: first scene seed of the twin (episode k uses ``seed + k``; default: the robot's ``seed`` argument,
            else 0).
        control_hz: executor rate.
        record: folder for a LeRobotDataset v3 recording of every decision (``None`` = off).
        record_overwrite: replace a dataset already in ``record`` (``--overwrite``), once an episode is saved.
        calibration: JSON file of a :class:`CameraCalibration` (``None`` = the robot's own, if any).
        estop_port: port of the e-stop HTTP endpoint on 127.0.0.1 (``None`` = off, ``0`` = any free port).
        estop_token: operator token required by ``POST /reset`` of the e-stop endpoint (``None`` =
            ``$DPPO_ESTOP_TOKEN``, else a random one printed at start); stopping never needs it.
        skills: the skill actions offered to the model: ``true`` = every skill the robot supports (with the twin:
            pick, place, push, home, open, close, lift), ``false`` = none, or a list of skill names (a subset of
            those; e.g. ``[pick, place, push, home]``, the simulated envs' skills).
        step_prompt: the served checkpoint's step prompt style, ``full`` or ``compact``: the style it was trained
            with (``dppo_step_prompt.json`` in its folder; ``full`` when there is none).
        planner: planner loop settings.
        safety: safety limits.
        motion: motion sequence settings.
    """

    robot: str = "sim"
    robot_args: dict[str, Any] = field(default_factory=dict)
    camera: str | None = None
    camera_fps: float = 15.0
    server: str = "http://127.0.0.1:8000/v1"
    model: str | None = None
    api_key: str | None = field(default=None, repr=False)
    task: str = ""
    episodes: int = 1
    seed: int | None = None
    control_hz: float = 30.0
    record: str | None = None
    record_overwrite: bool = False
    calibration: str | None = None
    estop_port: int | None = None
    estop_token: str | None = field(default=None, repr=False)
    skills: bool | list[str] = True
    step_prompt: Literal["full", "compact"] = "full"
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise ConfigError(f"episodes must be >= 1, got {self.episodes}")
        if not 1 <= self.control_hz <= 1000:
            raise ConfigError(f"control_hz must be in [1, 1000], got {self.control_hz}")
        if self.camera_fps <= 0:
            raise ConfigError(f"camera_fps must be positive, got {self.camera_fps}")


class Bridge:
    """A running bridge (context manager). Build with a :class:`BridgeConfig`; run with :meth:`run_episode`.

    Args:
        config: the settings.
        robot: an already built robot (tests); default: ``make_robot(config.robot, **config.robot_args)``.
        client: an already built chat client (tests); default: from ``config.server``.
        camera: ``camera(robot) -> Camera`` building the camera from the (wrapped) robot; default: from
            ``config.camera``.
    """

    def __init__(self, config: BridgeConfig, robot: Any = None, client: ChatClient | None = None,
                 camera: Any = None) -> None:
        self.config = cfg = config
        self.robot = BridgeRobot(robot if robot is not None else make_robot(cfg.robot, **cfg.robot_args))
        self.profile = self.robot.profile  # the robot's own static facts (dppo_embodied.robot.RobotProfile)
        self._client_owned = client is None
        self.client = client
        self._camera_factory = camera
        self.frames: LatestFrame | None = None
        self.executor: Executor | None = None
        self.estop_server: EStopServer | None = None
        self.recorder: Any = None
        self.planner: Planner | None = None
        self.results: list[EpisodeResult] = []
        self.safety: Safety | None = None
        self.episode = 0

    # ---------------------------------------------------------------------------------------- lifecycle
    def __enter__(self) -> Bridge:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Connect the robot and start the camera thread, the executor and the e-stop endpoint."""
        cfg = self.config
        self.robot.connect()
        self.safety = Safety(cfg.safety, control_hz=cfg.control_hz, workspace=self.robot.workspace)
        if self.safety.workspace is None:
            raise ConfigError(f"robot {cfg.robot!r} declares no workspace: set safety.workspace_min/max (metres, "
                              "robot base frame) before moving it")
        spec = cfg.camera or self.profile.camera
        cam = self._camera_factory(self.robot) if self._camera_factory else make_camera(spec, robot=self.robot)
        self.frames = LatestFrame(cam, max_age_s=cfg.safety.stale_frame_s, min_period_s=1.0 / cfg.camera_fps,
                                  max_identical=None if spec.startswith("sim") else 30).start()
        self.frames.wait_first(10.0)
        calibration = self._calibration(cam.name)
        motion_cfg = cfg.motion
        if motion_cfg.home is None and self.robot.home is not None:
            motion_cfg = MotionConfig(**{**motion_cfg.__dict__, "home": self.robot.home})
        skills = None
        if cfg.skills:
            locate = getattr(self.robot.robot, "locate", None)
            skills = SkillLibrary(locator=locate if callable(locate) else sim_locator(self.robot,
                                                                                       motion_cfg.plane_z),
                                  home=motion_cfg.home)
        self.motion = MotionPlanner(motion_cfg, calibration, ttl_s=cfg.safety.action_ttl_s,
                                    speed_m_s=cfg.safety.max_speed_m_s * cfg.safety.slow_scale, skills=skills)
        self.skill_names = _offered(skills.names if skills is not None else (), cfg.skills)
        self.executor = Executor(self.robot, self.safety, rate_hz=cfg.control_hz,
                                 state_fn=self.robot.ee_pose).start()
        if cfg.estop_port is not None:
            token = cfg.estop_token or os.environ.get("DPPO_ESTOP_TOKEN") or None
            self.estop_server = EStopServer(self.safety.estop, port=cfg.estop_port, token=token, status=self.status)
        if self.client is None:
            self.client = self._make_client()
        if cfg.record:
            from robot_bridge.recording import DecisionRecorder

            frame = self.frames.wait_first(1.0)
            self.recorder = DecisionRecorder(cfg.record, fps=cfg.planner.rate_hz, camera=cam.name,
                                             image_shape=_sent_shape(frame.image.shape, cfg.planner.max_side),
                                             robot_type=getattr(self.robot.robot, "name", cfg.robot),
                                             overwrite=cfg.record_overwrite)

    def _make_client(self) -> ChatClient:
        cfg = self.config
        p = cfg.planner
        model = cfg.model
        probe = ChatClient(ClientConfig(base_url=cfg.server, model=model or "probe", api_key=cfg.api_key,
                                        timeout_s=5.0, max_retries=2))
        try:
            if model is None:
                models = probe.list_models()
                if not models:
                    raise ConfigError(f"{cfg.server}/models lists no model; pass --model")
                model = models[0]
        finally:
            probe.close()
        return ChatClient(ClientConfig(base_url=cfg.server, model=model, api_key=cfg.api_key,
                                       timeout_s=p.request_timeout_s, connect_timeout_s=min(1.0, p.request_timeout_s),
                                       max_retries=0, concurrency=1, max_tokens=p.max_tokens,
                                       temperature=p.temperature))

    def _calibration(self, camera: str) -> CameraCalibration | None:
        if self.config.calibration:
            path = Path(self.config.calibration)
            try:
                return CameraCalibration.from_dict(json.loads(path.read_text()))
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise ConfigError(f"cannot read the camera calibration {path}: {e}; expected the JSON of "
                                  "CameraCalibration.to_dict()") from e
        cal = self.robot.calibration(camera)
        if cal is None:
            logger.warning("no camera calibration: point actions will be refused (pass --calibration FILE)")
        return cal

    def close(self) -> None:
        """Stop everything: planner, executor (final hold), camera, e-stop endpoint, recorder, client, robot."""
        if self.planner is not None:
            self.planner.stop()
        if self.executor is not None:
            self.executor.stop()
        if self.frames is not None:
            self.frames.stop()
        if self.estop_server is not None:
            self.estop_server.close()
        if self.recorder is not None:
            try:
                self.recorder.close()
            except Exception as e:
                logger.warning("closing the recording failed: %s", e)
        if self.client is not None and self._client_owned:
            self.client.close()
        try:
            if self.robot.is_connected:
                self.robot.disconnect()
        except Exception as e:
            logger.warning("robot disconnect failed: %s", e)

    # ------------------------------------------------------------------------------------------ episodes
    def _setup_task(self, task: str, seed: int | None) -> str:
        """Reset the twin (seeded) and set its task; returns the instruction shown to the model."""
        reset, set_task = getattr(self.robot.robot, "reset", None), getattr(self.robot.robot, "set_task", None)
        if callable(reset) and callable(set_task):
            self.robot.reset(seed)
            if not task:
                objects = list((self.robot.scene_state() or {}).get("objects") or {})
                if not objects:
                    raise ConfigError("the twin scene has no objects; pass --task")
                task = f"pick {objects[0]}"
            t = self.robot.set_task(task)
            return str(getattr(t, "instruction", task))
        if not task:
            raise ConfigError("--task is required: the instruction for the model, e.g. 'Pick up the red block.'")
        return task

    def run_episode(self, task: str | None = None, seed: int | None = None,
                    max_steps: int | None = None) -> EpisodeResult:
        """Run one episode (the bridge must be started)."""
        if self.executor is None or self.frames is None or self.safety is None or self.client is None:
            raise ConfigError("the bridge is not started; use it as a context manager")
        cfg = self.config
        if seed is None:  # the twin gets a new scene per episode: seed, seed + 1, ...
            base = cfg.seed if cfg.seed is not None else cfg.robot_args.get("seed", 0)
            seed = int(base) + self.episode
        self.executor.clear()
        instruction = self._setup_task(cfg.task if task is None else task, seed)
        self.executor.rebase()
        self.safety.reset_episode()
        self.motion.held_bottom_offset = None
        if self.recorder is not None:
            self.recorder.start_episode(instruction)
        self.planner = Planner(self.client, self.frames, self.robot, self.executor, self.safety, self.motion,
                               instruction, cfg.planner, skills=self.skill_names, on_decision=self._on_decision,
                               keep_jpeg=self.recorder is not None, style=cfg.step_prompt)
        self.safety.watchdog.feed()
        result = self.planner.run(max_steps)
        self.executor.clear()
        if self.recorder is not None:
            self.recorder.end_episode(status=result.status, success=result.success, steps=result.steps)
        self.results.append(result)
        self.episode += 1
        return result

    def _on_decision(self, d: Decision) -> None:
        if self.recorder is not None:
            action = None
            if d.waypoints and self.safety is not None:
                w = d.waypoints[0].pose
                xyz, _ = self.safety.clamp_workspace(w.xyz)
                action = [*map(float, xyz), min(1.0, max(0.0, w.gripper))]
            self.recorder.add(d, action)

    # ---------------------------------------------------------------------------------------------- status
    def status(self) -> dict[str, Any]:
        """A status snapshot (decision rate, latency, queue, mode, safety events, e-stop)."""
        out: dict[str, Any] = {"episode": self.episode}
        if self.planner is not None:
            out.update(decisions=self.planner.index, rate_hz=round(self.planner.decision_rate_hz, 2),
                       request_p50_ms=round(self.planner.request_p50_ms(), 1))
        if self.executor is not None:
            last = self.executor.last
            out.update(queue=self.executor.queue_len, mode=last.mode if last else "idle",
                       overruns=self.executor.stats.overruns)
        if self.safety is not None:
            out.update(safety=self.safety.events.snapshot(), estop=self.safety.estop.latched,
                       estop_reason=self.safety.estop.reason, invalid=self.safety.invalid_count)
        return out

    def status_line(self) -> str:
        """One line for the terminal."""
        s = self.status()
        events = s.get("safety") or {}
        top = ", ".join(f"{k} {v}" for k, v in sorted(events.items(), key=lambda kv: -kv[1])[:3])
        estop = f"E-STOP ({s.get('estop_reason')})" if s.get("estop") else "e-stop off"
        return (f"ep {s.get('episode', 0) + 1} step {s.get('decisions', 0)} | {s.get('rate_hz', 0.0):.1f} Hz | "
                f"req p50 {s.get('request_p50_ms', 0.0):.0f} ms | queue {s.get('queue', 0)} | "
                f"{s.get('mode', 'idle')} | invalid {s.get('invalid', 0)} | safety: {top or 'none'} | {estop}")


def _offered(supported: tuple[str, ...], wanted: bool | list[str]) -> tuple[str, ...]:
    """The skills offered to the model: ``supported`` (``wanted`` true), none, or the listed ones (in that order).

    Raises:
        ConfigError: a listed skill the robot does not support, naming those it does.
    """
    if isinstance(wanted, bool):
        return supported if wanted else ()
    unknown = [name for name in wanted if name not in supported]
    if unknown:
        raise ConfigError(f"skills: {unknown} not supported by this robot; it supports: "
                          f"{', '.join(supported) or '(none: no object locator and no home pose)'}")
    return tuple(dict.fromkeys(wanted))


def _sent_shape(shape: tuple[int, ...], max_side: int | None) -> tuple[int, int, int]:
    h, w = int(shape[0]), int(shape[1])
    if max_side is not None and max(h, w) > max_side:
        s = max_side / max(h, w)
        h, w = max(1, round(h * s)), max(1, round(w * s))
    return h, w, 3
