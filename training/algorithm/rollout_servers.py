"""The servers of ``rollout.engine: server``: OpenAI-compatible replicas of the current checkpoint on this node.

:class:`ServerFleet` launches ``rollout.server.replicas`` processes on 127.0.0.1, each on its own free port
(``port_base`` upwards; a port in use is skipped) and its own GPUs (``CUDA_VISIBLE_DEVICES``), with its output in
``<log_dir>/replica<i>.log``:

* ``vllm``: ``vllm serve`` built by :func:`inference.serving.vllm_launcher.build_vllm_command` with throughput
  settings (many sequences, prefix and multimodal caches on: the T rollouts of a candidate share their prompt),
  tensor parallel over ``gpus_per_replica`` GPUs;
* ``dppo``: ``dppo serve`` (transformers, micro-batched), on one GPU or on CPU (``gpus_per_replica: 0``).

Every replica is served as ``policy`` behind a per-fleet random API key. :meth:`ServerFleet.start` returns once
every replica answers ``/v1/models``; a replica that exits or stays silent for ``startup_timeout_s`` stops the
start with a :class:`~dppo_embodied.errors.TrainingError` naming its command and log file (with the log's last
lines). Once up, a watcher thread (:meth:`ServerFleet.watch`) restarts a replica that dies, on the same port when
it is free, at most ``max_restarts`` times per generation step; :meth:`ServerFleet.wait_healthy` waits for that (or
raises the watcher's error).
Replicas are process-group leaders (vLLM's engine processes go with them) and get SIGTERM when the training process
dies (Linux ``PR_SET_PDEATHSIG``), so a ``kill -9`` of the run leaves no server behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dppo_embodied.client import ChatClient, ClientConfig
from dppo_embodied.errors import TrainingError
from dppo_embodied.imports import is_available
from training.algorithm.rollout_config import ServerSettings

logger = logging.getLogger(__name__)

#: The model name every launched replica serves.
SERVED_NAME = "policy"
#: Seconds between readiness probes.
POLL_S = 0.5


def port_free(port: int, host: str = "127.0.0.1", reuse: bool = False) -> bool:
    """Whether ``host:port`` can be bound now (``reuse``: as a server that sets ``SO_REUSEADDR`` can, through the
    ``TIME_WAIT`` connections a dead server leaves)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        if reuse:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(start: int, taken: set[int] | None = None, tries: int = 2000) -> int:
    """The first port from ``start`` upwards that is free on 127.0.0.1 and not in ``taken``.

    Raises:
        TrainingError: none in ``tries`` ports.
    """
    taken = taken or set()
    for port in range(start, min(65536, start + tries)):
        if port not in taken and port_free(port):
            return port
    raise TrainingError(f"no free port on 127.0.0.1 in {start}..{start + tries - 1}; set rollout.server.port_base "
                        "to another range")


def resolve_kind(settings: ServerSettings) -> str:
    """``vllm`` or ``dppo``: ``auto`` picks vLLM when it is installed and GPUs are used, else ``dppo serve``."""
    if settings.kind != "auto":
        return settings.kind
    return "vllm" if settings.gpus_per_replica > 0 and is_available("vllm") and _cuda() else "dppo"


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: SIGTERM this process when the process that launched it dies (no orphan server after kill -9)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1


def replica_command(kind: str, settings: ServerSettings, model_dir: str, port: int, *, dtype: str,
                    max_pixels: int | None, max_tokens: int, timeout_s: float, on_gpu: bool) -> list[str]:
    """The command line of one replica (the API key travels in the environment, never here).

    Args:
        kind: ``vllm`` or ``dppo``.
        settings: the server settings.
        model_dir: the checkpoint to serve.
        port: its port on 127.0.0.1.
        dtype: weights dtype.
        max_pixels: the processor's pixel budget per image (as the training process uses).
        max_tokens: the largest ``max_tokens`` a rollout asks for.
        timeout_s: the longest a request may take (``dppo serve``'s request deadline).
        on_gpu: the replica has GPUs (``dppo serve --device cuda``).
    """
    if kind == "vllm":
        from inference.serving.config import ServeConfig
        from inference.serving.vllm_launcher import VLLMSettings, build_vllm_command

        # sampling follows each request alone, as GRPO's and the local engine's do (inference.policy
        # SAMPLING_OVERRIDES): vLLM's default would add the checkpoint's generation_config (e.g. top_k 1)
        cfg = ServeConfig(model=model_dir, backend="vllm", port=port, served_model_name=SERVED_NAME, dtype=dtype,
                          max_pixels=max_pixels, max_model_len=settings.max_model_len,
                          extra_args=["--generation-config", "vllm", *settings.extra_args])
        vs = VLLMSettings(images_per_prompt=settings.images_per_prompt, max_num_seqs=settings.max_num_seqs,
                          max_num_batched_tokens=max(16384, 2 * (settings.max_model_len or 8192)),
                          prefix_caching=True, mm_processor_cache_gb=4.0,
                          gpu_memory_utilization=settings.gpu_memory_utilization,
                          tensor_parallel_size=max(1, settings.gpus_per_replica))
        return build_vllm_command(cfg, vs)
    cmd = [sys.executable, "-m", "inference.serving.cli", "--model", model_dir, "--host", "127.0.0.1",
           "--port", str(port), "--served-model-name", SERVED_NAME, "--dtype", dtype,
           "--max-batch-size", str(settings.batch_size), "--max-images", str(settings.images_per_prompt),
           "--max-tokens-cap", str(max(4096, max_tokens)), "--max-work-tokens", str(max(8192, max_tokens)),
           "--request-timeout", f"{timeout_s:g}", "--max-request-timeout", f"{max(600.0, timeout_s):g}",
           "--device", "cuda" if on_gpu else "cpu"]
    if max_pixels:
        cmd += ["--max-pixels", str(max_pixels)]
    if settings.threads:
        cmd += ["--threads", str(settings.threads)]
    if settings.max_model_len:
        cmd += ["--max-model-len", str(settings.max_model_len)]
    return cmd + list(settings.extra_args)


@dataclass
class Replica:
    """One server process and where it lives."""

    index: int
    gpus: list[int]
    port: int = 0
    command: list[str] = field(default_factory=list)
    log: Path = Path()
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0

    @property
    def url(self) -> str:
        """Its API root."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def alive(self) -> bool:
        """The process is running."""
        return self.proc is not None and self.proc.poll() is None

    def describe(self) -> str:
        """The command as a shell line, and its log file."""
        return f"`{shlex.join(self.command)}` (log: {self.log})"


def log_tail(path: Path, lines: int = 12) -> str:
    """The last ``lines`` lines of a log file (empty when unreadable)."""
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class ServerFleet:
    """The replicas of one checkpoint on this node (module docstring).

    Args:
        settings: ``rollout.server``.
        model_dir: the checkpoint to serve.
        log_dir: folder of the replicas' logs.
        dtype: weights dtype.
        max_pixels: the processor's pixel budget per image.
        max_tokens: the largest ``max_tokens`` a rollout asks for.
        timeout_s: the longest one request may take.
    """

    def __init__(self, settings: ServerSettings, model_dir: str, log_dir: Path, *, dtype: str,
                 max_pixels: int | None, max_tokens: int, timeout_s: float) -> None:
        self.settings, self.model_dir, self.log_dir = settings, str(model_dir), Path(log_dir)
        self.dtype, self.max_pixels, self.max_tokens, self.timeout_s = dtype, max_pixels, max_tokens, timeout_s
        self.kind = resolve_kind(settings)
        self.api_key = secrets.token_urlsafe(24)
        gpus, per = settings.gpu_ids, settings.gpus_per_replica
        self.replicas = [Replica(i, gpus[i * per:(i + 1) * per]) for i in range(settings.replicas)]
        self._lock = threading.RLock()
        self._stopped = threading.Event()
        self._stopping = False
        self._watcher: threading.Thread | None = None
        self.error: TrainingError | None = None

    @property
    def urls(self) -> list[str]:
        """The replicas' API roots."""
        return [r.url for r in self.replicas]

    def _env(self, r: Replica) -> dict[str, str]:
        env = dict(os.environ)
        env["DPPO_API_KEY"] = self.api_key  # dppo serve reads it; vLLM gets it as VLLM_API_KEY
        env["VLLM_API_KEY"] = self.api_key
        env["VLLM_MEDIA_URL_ALLOW_REDIRECTS"] = "0"
        if self.kind == "vllm" or (r.gpus and _cuda()):
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in r.gpus)
        for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
            env.pop(key, None)  # a replica is not a member of the training process group
        return env

    def _launch(self, r: Replica, taken: set[int]) -> None:
        # a restart keeps its address when it can (the node's other ranks know only that one)
        same = r.port and r.port not in taken and port_free(r.port, reuse=True)
        r.port = r.port if same else free_port(self.settings.port_base + r.index, taken)
        taken.add(r.port)
        r.command = replica_command(self.kind, self.settings, self.model_dir, r.port, dtype=self.dtype,
                                    max_pixels=self.max_pixels, max_tokens=self.max_tokens, timeout_s=self.timeout_s,
                                    on_gpu=bool(r.gpus) and _cuda())
        self.log_dir.mkdir(parents=True, exist_ok=True)
        r.log = self.log_dir / f"replica{r.index}.log"
        with r.log.open("ab") as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {shlex.join(r.command)}\n".encode())
            log.flush()
            r.proc = subprocess.Popen(r.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      env=self._env(r), start_new_session=True,
                                      preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        logger.info("rollout replica %d (%s, GPUs %s): %s", r.index, self.kind, r.gpus or "none", r.describe())

    def _wait_ready(self, reps: list[Replica], taken: set[int]) -> None:
        clients = {r.index: ChatClient(ClientConfig(base_url=r.url, model=SERVED_NAME, api_key=self.api_key,
                                                    max_retries=0, timeout_s=5.0)) for r in reps}
        deadline = time.monotonic() + self.settings.startup_timeout_s
        waiting = list(reps)
        port_retries = 3
        try:
            while waiting:
                if self._stopped.is_set():
                    raise TrainingError("the rollout servers were stopped while starting")
                for r in list(waiting):
                    if not r.alive:
                        tail = log_tail(r.log)
                        if "address already in use" in tail.lower() and port_retries > 0:  # lost a port race
                            port_retries -= 1
                            clients[r.index].close()
                            taken.add(r.port)
                            self._launch(r, taken)
                            clients[r.index] = ChatClient(ClientConfig(base_url=r.url, model=SERVED_NAME,
                                                                       api_key=self.api_key, max_retries=0))
                            continue
                        raise TrainingError(
                            f"rollout server replica {r.index} exited with code {r.proc.returncode if r.proc else '?'}"
                            f" before it was ready: {r.describe()}. Last lines of the log:\n{tail}")
                    if clients[r.index].health(timeout_s=2.0):
                        waiting.remove(r)
                if waiting and time.monotonic() > deadline:
                    names = "; ".join(r.describe() for r in waiting)
                    raise TrainingError(
                        f"rollout server(s) not up within rollout.server.startup_timeout_s = "
                        f"{self.settings.startup_timeout_s:g} s: {names}. Check the log, or raise the timeout. "
                        f"Last lines of replica {waiting[0].index}'s log:\n{log_tail(waiting[0].log)}")
                if waiting:
                    time.sleep(POLL_S)
        finally:
            for c in clients.values():
                c.close()

    def start(self) -> ServerFleet:
        """Launch every replica and wait until all answer (they start in parallel).

        Raises:
            TrainingError: a replica exited or did not answer in time (command and log named); the others are
                stopped.
        """
        taken: set[int] = set()
        t0 = time.monotonic()
        try:
            for r in self.replicas:
                self._launch(r, taken)
            self._wait_ready(self.replicas, taken)
        except BaseException:
            self.stop()
            raise
        logger.info("%d rollout replica(s) of %s up in %.1f s: %s", len(self.replicas), self.model_dir,
                    time.monotonic() - t0, ", ".join(self.urls))
        return self

    def dead(self) -> list[Replica]:
        """Replicas whose process has exited."""
        return [r for r in self.replicas if not r.alive]

    def new_step(self) -> None:
        """A new generation step: every replica may be restarted ``max_restarts`` times again."""
        with self._lock:
            for r in self.replicas:
                r.restarts = 0
            self.error = None

    def revive(self) -> list[int]:
        """Restart the replicas that died (each at most ``max_restarts`` times per step); returns their indices.

        Raises:
            TrainingError: a dead replica has no restart left, or does not come back (command and log named).
        """
        with self._lock:
            dead = [r for r in self.dead() if r.proc is not None]
            if not dead or self._stopping:
                return []
            spent = [r for r in dead if r.restarts >= self.settings.max_restarts]
            if spent:
                r = spent[0]
                raise TrainingError(
                    f"rollout server replica {r.index} died (exit code {r.proc.returncode if r.proc else '?'}) and "
                    f"has no restart left in this step (rollout.server.max_restarts = {self.settings.max_restarts}):"
                    f" {r.describe()}; the step is resumable: run the same command with --resume (finished rollouts "
                    f"are not sent again). Last lines of its log:\n{log_tail(r.log)}")
            taken = {r.port for r in self.replicas if r.alive}
            for r in dead:
                logger.warning("rollout server replica %d died (exit code %s); restarting it: %s", r.index,
                               r.proc.returncode if r.proc else None, r.describe())
                r.restarts += 1
                self._launch(r, taken)
                taken.add(r.port)
            self._wait_ready(dead, taken)
            return [r.index for r in dead]

    def watch(self, every_s: float = 1.0) -> None:
        """Start the watcher thread: dead replicas are revived (:meth:`revive`); its error is kept in
        :attr:`error` and raised by :meth:`wait_healthy`."""
        def loop() -> None:
            while not self._stopped.wait(every_s):
                if self.error is None:
                    try:
                        self.revive()
                    except TrainingError as e:
                        self.error = e
                        logger.error("%s", e)

        self._watcher = threading.Thread(target=loop, name="dppo-rollout-watch", daemon=True)
        self._watcher.start()

    def wait_healthy(self) -> None:
        """Return once every replica is up again (the watcher restarts dead ones).

        Raises:
            TrainingError: a replica cannot be restarted, or is not back within ``startup_timeout_s``.
        """
        deadline = time.monotonic() + self.settings.startup_timeout_s + 5.0
        while True:
            if self.error is not None:
                raise self.error
            with self._lock:
                up = all(r.alive for r in self.replicas)
                if up:
                    clients = [ChatClient(ClientConfig(base_url=r.url, model=SERVED_NAME, api_key=self.api_key,
                                                       max_retries=0)) for r in self.replicas]
                    try:
                        if all(c.health(timeout_s=2.0) for c in clients):
                            return
                    finally:
                        for c in clients:
                            c.close()
            if self._watcher is None:
                self.revive()
            if time.monotonic() > deadline:
                raise TrainingError(f"rollout servers not back within {self.settings.startup_timeout_s:g} s: "
                                    + "; ".join(r.describe() for r in self.replicas))
            time.sleep(POLL_S)

    def stop(self, grace_s: float = 30.0) -> None:
        """Stop the watcher and every replica: SIGTERM to its process group, SIGKILL after ``grace_s``
        (idempotent)."""
        self._stopped.set()
        self._stopping = True
        if self._watcher is not None and self._watcher is not threading.current_thread():
            self._watcher.join(grace_s)
        for r in self.replicas:
            if r.proc is not None and r.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(r.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for r in self.replicas:
            if r.proc is None:
                continue
            try:
                r.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("rollout replica %d ignored SIGTERM for %.0f s; killing it", r.index, grace_s)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(r.proc.pid, signal.SIGKILL)
                r.proc.wait(10)

    def __enter__(self) -> ServerFleet:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
