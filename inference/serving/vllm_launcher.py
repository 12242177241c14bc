"""The ``vllm`` backend of ``dppo serve``: launch ``vllm serve`` with settings that suit robot decisions.

:class:`VLLMSettings` defaults suit a robot; the metaloop's rollout servers (``rollout.engine: server``,
:mod:`training.algorithm.rollout_servers`) build the same command with throughput settings instead (hundreds of
sequences, multimodal cache on, ``tensor_parallel_size`` GPUs per replica).

A robot asks one short question per decision with one or two fresh camera frames, so the settings favour time to
first token over throughput (robotics reference, section 11):

* ``--limit-mm-per-prompt '{"image": 2}'``: one or two frames per prompt;
* ``--max-model-len 8192`` and ``--max-num-seqs 4``: few concurrent sequences, short contexts;
* ``--enable-prefix-caching``: the static system prompt (placed before the first image) is reused across frames;
* ``--mm-processor-cache-gb 0``: every frame is new, the multimodal processor cache never hits;
* ``--max-num-batched-tokens 16384``: above prompt + image tokens, so prefill is not split;
* ``--mm-processor-kwargs '{"max_pixels": N}'`` when ``--max-pixels`` is given (bounds vision tokens);
* binds 127.0.0.1 unless told otherwise; the API key travels in ``VLLM_API_KEY`` (not on the command line, where
  ``ps`` would show it); ``VLLM_MEDIA_URL_ALLOW_REDIRECTS=0``; FastAPI docs disabled.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dppo_embodied.errors import DependencyNotInstalled

if TYPE_CHECKING:
    from inference.serving.config import ServeConfig

logger = logging.getLogger(__name__)


class VLLMNotInstalled(DependencyNotInstalled):
    """vLLM is missing (it is not one of our extras: it needs a CUDA machine and pins its own torch)."""

    def __init__(self) -> None:
        super().__init__("vllm", "serve")
        self.msg = ("'vllm' is not installed: install it on a CUDA machine with `pip install vllm` (in its own "
                    "environment if its torch pin clashes with training), or serve on CPU with "
                    "`dppo serve --backend transformers`")
        self.args = (self.msg,)


@dataclass(frozen=True)
class VLLMSettings:
    """Robot-decision settings of ``vllm serve`` (see the module docstring)."""

    images_per_prompt: int = 2
    max_model_len: int = 8192
    max_num_seqs: int = 4
    max_num_batched_tokens: int = 16384
    prefix_caching: bool = True
    mm_processor_cache_gb: float = 0.0
    gpu_memory_utilization: float | None = None
    tensor_parallel_size: int = 1


def find_vllm() -> list[str]:
    """The command that runs the vLLM CLI (``vllm`` on PATH, else ``python -m vllm.entrypoints.cli.main``).

    Raises:
        VLLMNotInstalled: neither is available.
    """
    exe = shutil.which("vllm")
    if exe:
        return [exe]
    try:
        found = importlib.util.find_spec("vllm") is not None
    except (ImportError, ValueError):
        found = False
    if found:
        return [sys.executable, "-m", "vllm.entrypoints.cli.main"]
    raise VLLMNotInstalled()


def build_vllm_command(cfg: ServeConfig, settings: VLLMSettings | None = None,
                       vllm: list[str] | None = None) -> list[str]:
    """The ``vllm serve`` argument list for ``cfg`` (the API key is not in it: see :func:`vllm_env`).

    Args:
        cfg: the serve config (model, host, port, served name, max_pixels, max_model_len, extra_args).
        settings: robot-decision settings.
        vllm: the vLLM executable prefix (default: :func:`find_vllm`).
    """
    s = settings or VLLMSettings()
    cmd = [*(vllm if vllm is not None else find_vllm()), "serve", str(cfg.model),
           "--host", cfg.host, "--port", str(cfg.port),
           "--served-model-name", cfg.model_name,
           "--dtype", "auto" if cfg.dtype == "float32" else cfg.dtype,
           "--limit-mm-per-prompt", json.dumps({"image": s.images_per_prompt}),
           "--max-model-len", str(cfg.max_model_len or s.max_model_len),
           "--max-num-seqs", str(s.max_num_seqs),
           "--max-num-batched-tokens", str(s.max_num_batched_tokens),
           "--mm-processor-cache-gb", f"{s.mm_processor_cache_gb:g}",
           "--enable-prefix-caching" if s.prefix_caching else "--no-enable-prefix-caching",
           "--disable-fastapi-docs"]
    if cfg.max_pixels:
        cmd += ["--mm-processor-kwargs", json.dumps({"max_pixels": int(cfg.max_pixels)})]
    if s.gpu_memory_utilization is not None:
        cmd += ["--gpu-memory-utilization", f"{s.gpu_memory_utilization:g}"]
    if s.tensor_parallel_size > 1:
        cmd += ["--tensor-parallel-size", str(s.tensor_parallel_size)]
    return cmd + list(cfg.extra_args)


def vllm_env(cfg: ServeConfig, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment of the vLLM process: the API key (``VLLM_API_KEY``) and media hardening."""
    env = dict(os.environ if base is None else base)
    env["VLLM_MEDIA_URL_ALLOW_REDIRECTS"] = "0"
    env.pop("VLLM_API_KEY", None)
    if cfg.api_key:
        env["VLLM_API_KEY"] = cfg.api_key
    return env


def launch_vllm(cfg: ServeConfig, settings: VLLMSettings | None = None) -> int:
    """Run ``vllm serve`` in the foreground, forwarding SIGINT/SIGTERM; returns its exit code.

    Raises:
        VLLMNotInstalled: vLLM is not installed.
    """
    cmd = build_vllm_command(cfg, settings)
    logger.info("launching: %s", " ".join(cmd))
    proc = subprocess.Popen(cmd, env=vllm_env(cfg))

    def forward(signum: int, _frame: Any) -> None:
        if proc.poll() is None:
            proc.send_signal(signum)

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return proc.wait()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
