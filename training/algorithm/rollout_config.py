"""Settings of the rollout engine (``rollout:`` in a recipe): where every metaloop generation outside the GRPO
trainer runs (difficulty estimation, diagnosis, evaluation, closed-loop episodes, the RL phase's episode rows).

* ``engine: local``: in-process transformers generation with the live model (CPU default, ``make demo``);
* ``engine: server``: the metaloop launches OpenAI-compatible servers on the current checkpoint before a
  generation step and stops them before the next training phase (``server:``: vLLM replicas, one per GPU or
  tensor-parallel group, or ``dppo serve`` where vLLM is absent);
* ``engine: openai``: an existing fleet (``base_urls``) that the user runs and keeps on the right weights.

Override on the command line as ``rollout.engine=server rollout.server.replicas=2``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dppo_embodied.config import check

__all__ = ["RolloutSettings", "ServerSettings"]

Engine = Literal["local", "server", "openai"]


@dataclass
class ServerSettings:
    """The servers ``engine: server`` launches (on each node, by its first process; they bind 127.0.0.1).

    Attributes:
        kind: ``vllm`` (``vllm serve`` through :mod:`inference.serving.vllm_launcher`), ``dppo`` (``dppo serve``,
            transformers; CPU or one GPU per replica) or ``auto`` (vLLM when importable, else ``dppo``).
        replicas: servers per node; requests are spread over them.
        gpus_per_replica: GPUs of one replica (vLLM's tensor-parallel size); 0 = CPU (``dppo`` only).
        gpus: the node's GPU indices the replicas use, in order (empty: ``0 .. replicas * gpus_per_replica - 1``).
            GPUs not listed stay with training only.
        port_base: first port tried; a port in use is skipped (the next free one on 127.0.0.1 is taken).
        startup_timeout_s: seconds a replica may take to answer ``/v1/models`` after launch.
        max_restarts: restarts of a replica that dies during one generation step (then the step fails, resumable).
        release_model: free the training process's in-memory model before launching (the GPUs are shared between
            training and serving; the next training phase reloads the committed checkpoint).
        gpu_memory_utilization: vLLM's memory fraction per GPU.
        max_model_len: context length of a replica (``None``: vLLM's launcher default / the model's own).
        max_num_seqs: vLLM's concurrent sequences per replica.
        images_per_prompt: images a prompt may carry (video frames included).
        batch_size: ``dppo serve``'s requests per batch.
        threads: ``dppo serve``'s torch CPU threads per replica (``None``: torch's default).
        dtype: weights dtype of the replicas (``None``: the recipe's ``model.dtype``).
        extra_args: extra arguments appended to every ``vllm serve`` / ``dppo serve`` command.
    """

    kind: Literal["auto", "vllm", "dppo"] = "auto"
    replicas: int = 1
    gpus_per_replica: int = 1
    gpus: list[int] = field(default_factory=list)
    port_base: int = 8100
    startup_timeout_s: float = 900.0
    max_restarts: int = 1
    release_model: bool = True
    gpu_memory_utilization: float = 0.85
    max_model_len: int | None = None
    max_num_seqs: int = 256
    images_per_prompt: int = 16
    batch_size: int = 16
    threads: int | None = None
    dtype: str | None = None
    extra_args: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        check(self.replicas >= 1, "rollout.server.replicas", f"must be >= 1, got {self.replicas}")
        check(self.gpus_per_replica >= 0, "rollout.server.gpus_per_replica",
              f"must be >= 0 (0 = CPU), got {self.gpus_per_replica}")
        check(not (self.kind == "vllm" and self.gpus_per_replica == 0), "rollout.server.gpus_per_replica",
              "vLLM replicas need GPUs: set gpus_per_replica >= 1, or kind: dppo for CPU replicas")
        need = self.replicas * self.gpus_per_replica
        check(not self.gpus or len(self.gpus) == need, "rollout.server.gpus",
              f"{self.replicas} replicas x {self.gpus_per_replica} GPUs need {need} GPU indices, got {self.gpus}")
        check(len(set(self.gpus)) == len(self.gpus) and all(g >= 0 for g in self.gpus), "rollout.server.gpus",
              f"GPU indices must be distinct and >= 0, got {self.gpus}")
        check(1024 <= self.port_base <= 65535 - self.replicas, "rollout.server.port_base",
              f"must be in 1024..{65535 - self.replicas}, got {self.port_base}")
        check(self.startup_timeout_s > 0, "rollout.server.startup_timeout_s",
              f"must be > 0, got {self.startup_timeout_s}")
        check(self.max_restarts >= 0, "rollout.server.max_restarts", f"must be >= 0, got {self.max_restarts}")
        check(0 < self.gpu_memory_utilization <= 1, "rollout.server.gpu_memory_utilization",
              f"must be in (0, 1], got {self.gpu_memory_utilization}")
        check(self.max_model_len is None or self.max_model_len >= 512, "rollout.server.max_model_len",
              f"must be >= 512 or null, got {self.max_model_len}")
        for key in ("max_num_seqs", "images_per_prompt", "batch_size"):
            v = getattr(self, key)
            check(v >= 1, f"rollout.server.{key}", f"must be >= 1, got {v}")
        check(self.threads is None or self.threads >= 1, "rollout.server.threads",
              f"must be >= 1 or null, got {self.threads}")
        check(self.dtype in (None, "float32", "bfloat16", "float16"), "rollout.server.dtype",
              f"must be float32, bfloat16, float16 or null, got {self.dtype!r}")

    @property
    def gpu_ids(self) -> list[int]:
        """The GPU indices of the replicas, in order (``gpus_per_replica`` each)."""
        return list(self.gpus) or list(range(self.replicas * self.gpus_per_replica))


@dataclass
class RolloutSettings:
    """Where the metaloop's generations run (module docstring).

    Attributes:
        engine: ``local``, ``server`` or ``openai``.
        server: the servers of ``engine: server``.
        base_urls: ``engine: openai``: the fleet's API roots (``http://host:port/v1``), used round-robin.
        model: ``engine: openai``: the served model name (``engine: server`` serves the checkpoint as ``policy``).
        api_key_env: environment variable holding the fleet's API key (never the key itself).
        concurrency: requests in flight per server.
        timeout_s: seconds one request attempt may take.
        max_retries: retries per request (the openai SDK's: connection errors, timeouts, 408/409/429, 5xx).
        image_format: how images travel to servers: ``png`` (lossless: the server sees exactly the local pixels)
            or ``jpeg`` (quality 90, smaller: remote fleets).
        journal: persist every finished rollout per step (``<run>/rollouts/<step>/rank<R>.jsonl``) so that
            ``--resume`` sends only the missing ones.
    """

    engine: Engine = "local"
    server: ServerSettings = field(default_factory=ServerSettings)
    base_urls: list[str] = field(default_factory=list)
    model: str = ""
    api_key_env: str = "DPPO_API_KEY"
    concurrency: int = 16
    timeout_s: float = 600.0
    max_retries: int = 2
    image_format: Literal["png", "jpeg"] = "png"
    journal: bool = True

    def __post_init__(self) -> None:
        if self.engine == "openai":
            check(bool(self.base_urls), "rollout.base_urls",
                  "engine: openai needs the fleet's URLs, e.g. [http://10.0.0.5:8000/v1, http://10.0.0.6:8000/v1]")
            check(bool(self.model), "rollout.model", "engine: openai needs the served model name")
        for i, url in enumerate(self.base_urls):
            check(url.startswith(("http://", "https://")), f"rollout.base_urls[{i}]",
                  f"must be an http(s) URL such as http://127.0.0.1:8000/v1, got {url!r}")
        check(self.concurrency >= 1, "rollout.concurrency", f"must be >= 1, got {self.concurrency}")
        check(self.timeout_s > 0, "rollout.timeout_s", f"must be > 0, got {self.timeout_s}")
        check(self.max_retries >= 0, "rollout.max_retries", f"must be >= 0, got {self.max_retries}")
