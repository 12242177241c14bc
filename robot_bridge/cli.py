"""``dppo bridge``: drive a robot with a served VLM (torch-free; runs on the robot computer).

    dppo bridge --robot sim --server http://127.0.0.1:8000/v1 --task "pick red_block" --max-steps 20
    dppo bridge --robot so101 --robot-arg port=/dev/ttyACM0 --robot-arg urdf=so101.urdf \\
        --workspace=-0.2,-0.2,0.01,0.2,0.2,0.25 --camera opencv:0 --calibration cam.json \\
        --task "Put the red block in the bowl." --dry-run --slow 0.25 --estop-port 8765 --record runs/rec1

Stops: press Enter (or type e) to latch the e-stop, ``reset`` to clear it, ``q`` to quit; SIGUSR1 latches it;
with ``--estop-port``, ``POST http://127.0.0.1:PORT/estop`` latches it (no token) and ``POST /reset`` clears it
(JSON, ``Authorization: Bearer TOKEN``; the token is printed at start unless given). Ctrl-C latches it and exits.
An e-stop ends the episode it interrupts and the exit status is 1.
YAML (``--config``) keys are :class:`robot_bridge.session.BridgeConfig` fields; ``--set planner.rate_hz=3`` sets
any nested field.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from typing import Any

FLAGS = {  # flag dest -> dotted config key
    "robot": "robot", "camera": "camera", "server": "server", "model": "model", "api_key": "api_key",
    "task": "task", "episodes": "episodes", "seed": "seed", "record": "record", "calibration": "calibration",
    "estop_port": "estop_port", "estop_token": "estop_token", "control_hz": "control_hz", "camera_fps": "camera_fps",
    "rate": "planner.rate_hz", "max_steps": "planner.max_steps", "request_timeout": "planner.request_timeout_s",
    "max_tokens": "planner.max_tokens", "temperature": "planner.temperature", "max_side": "planner.max_side",
    "slow": "safety.slow_scale", "max_speed": "safety.max_speed_m_s", "watchdog": "safety.watchdog_s",
    "max_invalid": "safety.max_invalid", "ttl": "safety.action_ttl_s", "step_prompt": "step_prompt",
}


def make_parser() -> argparse.ArgumentParser:
    """Argument parser of ``dppo bridge`` (flags default to "not given" so that YAML values survive)."""
    p = argparse.ArgumentParser(prog="dppo bridge", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog="\n".join(
                                    __doc__.splitlines()[1:]), argument_default=argparse.SUPPRESS)
    p.add_argument("--config", help="YAML file of BridgeConfig fields (flags override it)")
    p.add_argument("--robot", help="sim (MuJoCo twin), so100, so101, koch (default sim)")
    p.add_argument("--robot-arg", dest="robot_arg", action="append", default=[], metavar="KEY=VALUE",
                   help="robot argument, repeatable (sim: seed=3 image_size=224; so101: port=... urdf=...)")
    p.add_argument("--camera", help="sim[:NAME], opencv:INDEX|PATH, rtsp://..., video:PATH, lerobot:opencv:0")
    p.add_argument("--server", help="model server API root (default http://127.0.0.1:8000/v1)")
    p.add_argument("--model", help="served model id (default: the server's first)")
    p.add_argument("--api-key", dest="api_key", help="bearer token (default $DPPO_API_KEY / $OPENAI_API_KEY)")
    p.add_argument("--task", help="instruction; for the twin also 'pick red_block', 'stack a on b'")
    p.add_argument("--episodes", type=int, help="episodes to run (default 1)")
    p.add_argument("--seed", type=int, help="twin scene seed of the first episode")
    p.add_argument("--max-steps", dest="max_steps", type=int, help="decisions per episode")
    p.add_argument("--dry-run", dest="dry_run", action="store_true", help="shadow mode: never send actions")
    p.add_argument("--sync", action="store_true", help="step-and-wait: finish each plan before the next request")
    p.add_argument("--record", help="record every decision as a LeRobotDataset v3 in this folder (new or empty; "
                   "nothing is written until an episode is saved)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the dataset already in the --record folder (once the first episode is saved)")
    p.add_argument("--calibration", help="camera calibration JSON (CameraCalibration.to_dict())")
    p.add_argument("--workspace", help="end-effector box x0,y0,z0,x1,y1,z1 in metres (robot base frame)")
    p.add_argument("--estop-port", dest="estop_port", type=int, help="HTTP e-stop on 127.0.0.1:PORT (0 = any)")
    p.add_argument("--estop-token", dest="estop_token",
                   help="operator token of POST /reset (default $DPPO_ESTOP_TOKEN, else a random one printed)")
    p.add_argument("--rate", type=float, help="planner decisions per second (default 2)")
    p.add_argument("--control-hz", dest="control_hz", type=float, help="executor rate (default 30)")
    p.add_argument("--camera-fps", dest="camera_fps", type=float, help="camera capture rate (default 15)")
    p.add_argument("--request-timeout", dest="request_timeout", type=float,
                   help="seconds one model request may take; the robot holds meanwhile (default 10)")
    p.add_argument("--max-tokens", dest="max_tokens", type=int, help="response token budget (default 128)")
    p.add_argument("--temperature", type=float, help="sampling temperature (default 0)")
    p.add_argument("--max-side", dest="max_side", type=int, help="downscale frames to this many pixels")
    p.add_argument("--slow", type=float, help="slow mode: speed scale in (0, 1], e.g. 0.25")
    p.add_argument("--max-speed", dest="max_speed", type=float, help="end-effector speed cap m/s (default 0.15)")
    p.add_argument("--watchdog", type=float, help="watchdog seconds (default 0.5)")
    p.add_argument("--ttl", type=float, help="action time-to-live seconds (default 1.5)")
    p.add_argument("--max-invalid", dest="max_invalid", type=int, help="invalid outputs before stopping (10)")
    p.add_argument("--no-skills", dest="no_skills", action="store_true", help="disable skill actions")
    p.add_argument("--skills", help="offer only these skills, e.g. pick,place,push,home (the simulated envs' set)")
    p.add_argument("--step-prompt", dest="step_prompt", choices=["full", "compact"],
                   help="step prompt style the served model was trained with (its dppo_step_prompt.json; "
                        "default full)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="any config field, dotted (e.g. motion.hover_m=0.04), repeatable")
    p.add_argument("--no-status", dest="no_status", action="store_true", help="no live status line")
    p.add_argument("--json", dest="json_out", action="store_true", help="print a JSON summary at the end")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    return p


def config_from_args(ns: dict[str, Any]) -> Any:
    """Build a :class:`~robot_bridge.session.BridgeConfig` from parsed flags (and ``--config`` YAML)."""
    import yaml

    from dppo_embodied.config import apply_overrides, from_dict, load_yaml
    from dppo_embodied.errors import ConfigError
    from robot_bridge.session import BridgeConfig

    path = ns.get("config")
    data: dict[str, Any] = load_yaml(path) if path else {}
    sets: list[str] = []
    for dest, key in FLAGS.items():
        if dest in ns:
            sets.append(f"{key}={json.dumps(ns[dest])}")
    if ns.get("dry_run"):
        sets.append("safety.dry_run=true")
    if ns.get("sync"):
        sets.append("planner.sync=true")
    if ns.get("overwrite"):
        sets.append("record_overwrite=true")
    if ns.get("no_skills"):
        sets.append("skills=false")
    elif "skills" in ns:
        sets.append(f"skills={json.dumps([x.strip() for x in str(ns['skills']).split(',') if x.strip()])}")
    if "workspace" in ns:
        try:
            v = [float(x) for x in str(ns["workspace"]).split(",")]
        except ValueError:
            v = []
        if len(v) != 6:
            raise ConfigError(f"--workspace needs 6 numbers x0,y0,z0,x1,y1,z1 (metres), got {ns['workspace']!r}")
        sets += [f"safety.workspace_min={json.dumps(v[:3])}", f"safety.workspace_max={json.dumps(v[3:])}"]
    data = apply_overrides(data, sets, source="command line")
    data = apply_overrides(data, list(ns.get("overrides", [])), source="--set")
    args = data.setdefault("robot_args", {})
    for item in ns.get("robot_arg", []):
        k, sep, raw = item.partition("=")
        if not sep or not k:
            raise ConfigError(f"--robot-arg {item!r} must look like key=value (e.g. seed=3)")
        args[k.strip()] = yaml.safe_load(raw) if raw else ""
    return from_dict(BridgeConfig, data, source=path or "command line")


def main(argv: list[str] | None = None) -> int:
    """Run ``dppo bridge``; returns the exit code (0 ok, 1 e-stop/error, 2 bad arguments)."""
    ns = vars(make_parser().parse_args(argv))
    from dppo_embodied.errors import ConfigError, DppoError
    from dppo_embodied.logs import setup_logging

    setup_logging(int(ns.get("verbose", 0)))
    try:
        cfg = config_from_args(ns)
    except (ConfigError, DppoError) as e:
        print(f"dppo bridge: {e}", file=sys.stderr)
        return 2
    try:
        return _run(cfg, status=not ns.get("no_status", False), json_out=bool(ns.get("json_out")))
    except DppoError as e:
        print(f"dppo bridge: {e}", file=sys.stderr)
        return 1


def _run(cfg: Any, status: bool, json_out: bool) -> int:
    from robot_bridge.estop import KeyboardEStop, install_signal_estop, restore_signals
    from robot_bridge.session import Bridge

    stop_all = threading.Event()
    with Bridge(cfg) as bridge:
        assert bridge.safety is not None

        def quit_() -> None:
            stop_all.set()
            if bridge.planner is not None:
                bridge.planner.stop()

        old = install_signal_estop(bridge.safety.estop, on_quit=quit_)
        if sys.stdin is not None and sys.stdin.isatty():
            KeyboardEStop(bridge.safety.estop, on_quit=quit_)
        srv = bridge.estop_server
        if srv is not None:
            token = srv.token if srv.token_generated else "<the token you gave>"
            print(f"dppo bridge: e-stop: POST {srv.url}/estop (no token needed); reset: POST {srv.url}/reset with "
                  f"'Content-Type: application/json' and 'Authorization: Bearer {token}'", file=sys.stderr, flush=True)
        ticker = _StatusLine(bridge, enabled=status)
        try:
            for _ in range(cfg.episodes):
                if stop_all.is_set() or bridge.safety.estop.latched:
                    break
                r = bridge.run_episode()
                ticker.clear()
                print(f"episode {bridge.episode}: status={r.status} success={r.success} steps={r.steps} "
                      f"time={r.elapsed_s:.1f}s", flush=True)
        finally:
            ticker.stop()
            restore_signals(old)
        estop = bridge.safety.estop
        stopped = estop.latched or any(r.status.startswith("estop") for r in bridge.results)
        summary = {"episodes": [{"status": r.status, "success": r.success, "steps": r.steps,
                                 "elapsed_s": round(r.elapsed_s, 3)} for r in bridge.results],
                   "safety": bridge.safety.events.snapshot(), "estop": stopped,
                   "estop_reason": estop.last_reason if stopped else None}
        if json_out:
            print(json.dumps(summary), flush=True)
        if stopped:
            print(f"dppo bridge: stopped by the e-stop ({estop.last_reason})", file=sys.stderr, flush=True)
        return 1 if stopped else 0


class _StatusLine:
    """Prints the bridge status to stderr twice a second (one refreshed line on a terminal)."""

    def __init__(self, bridge: Any, enabled: bool = True, period_s: float = 0.5) -> None:
        self.bridge, self.period_s = bridge, period_s
        self.tty = sys.stderr.isatty()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="status-line")
        if enabled:
            self._thread.start()

    def _run(self) -> None:
        n = 0
        while not self._stop.wait(self.period_s):
            n += 1
            line = self.bridge.status_line()
            if self.tty:
                cols = os.get_terminal_size(sys.stderr.fileno()).columns if self.tty else 160
                print("\r" + line[: cols - 1].ljust(cols - 1), end="", file=sys.stderr, flush=True)
            elif n % 10 == 0:
                print(line, file=sys.stderr, flush=True)

    def clear(self) -> None:
        """End the refreshed line before printing something else."""
        if self.tty and self._thread.is_alive():
            print(file=sys.stderr)

    def stop(self) -> None:
        """Stop printing."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2.0)
        self.clear()


if __name__ == "__main__":
    sys.exit(main())
