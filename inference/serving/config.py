"""Settings of ``dppo serve`` (:class:`ServeConfig`): every flag of the command, checked when built.

Importable without the ``serve`` extra (FastAPI, uvicorn), so the command line can be parsed and refused early.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dppo_embodied.errors import ConfigError
from inference.serving.protocol import Limits
from inference.serving.security import is_loopback

#: what ``--backend`` accepts
BACKENDS = ("transformers", "vllm", "expert")


@dataclass
class ServeConfig:
    """Settings of ``dppo serve``.

    Attributes:
        model: checkpoint folder (or hub id, with network) of any of our VLMs, tiny or real (none for ``expert``).
        backend: ``"transformers"`` (this server), ``"vllm"`` (launch ``vllm serve``) or ``"expert"`` (the
            simulated envs' scripted expert, to rehearse ``dppo bridge --robot sim`` without a model).
        host: bind address; 127.0.0.1 by default. Non-loopback hosts need ``api_key``.
        port: TCP port (0 = any free port, printed at start-up).
        api_key: bearer token checked on every ``/v1`` request (``None`` = no auth; loopback only).
        served_model_name: model id clients send (default: the checkpoint folder's name).
        max_batch_size: requests generated together.
        batch_window_ms: how long the batcher waits for more requests after the first one.
        default_max_tokens: ``max_tokens`` when a request gives none.
        max_tokens_cap: largest ``max_tokens`` accepted.
        max_images: images per request.
        max_image_pixels: decoded pixels per image (width x height, read from the header; 413 above).
        max_request_pixels: decoded pixels of all the images of one request (413 above).
        max_queued_mpixels: millions of decoded image pixels the waiting requests may hold (503 above).
        decode_slots: requests whose JSON and images are decoded at the same time (bounds decoding memory).
        max_work_tokens: the most ``n * max_tokens`` one request may ask for (400 above).
        max_model_len: context length enforced on prompt + ``max_tokens`` (``None``: the model's
            ``max_position_embeddings``; larger than the model's is refused).
        request_timeout_s: a request's deadline after arrival, when it sends no ``timeout_s``.
        max_request_timeout_s: the largest ``timeout_s`` a request may send (400 above).
        saturation_wait_s: ``/health`` says ``saturated`` once a request has waited this long in the queue.
        allowed_origins: browser origins (``http://host:port``) allowed besides loopback when no key is set.
        max_body_mb: request body cap in MiB.
        max_queue: waiting requests before answering 503.
        dtype: model dtype (``float32``, ``bfloat16``, ``float16``).
        device: torch device (``None`` = CUDA when available, else CPU).
        max_pixels: optional bound on pixels per image in the processor (bounds vision tokens).
        threads: torch intra-op threads (``None`` = torch default).
        log_level: uvicorn log level.
        extra_args: extra arguments passed to ``vllm serve`` verbatim (vllm backend only).
        policy_args: keyword arguments of the expert policy (``seed``: the bridge's first scene seed).
    """

    model: str = ""
    backend: str = "transformers"
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = field(default=None, repr=False)
    served_model_name: str | None = None
    max_batch_size: int = 8
    batch_window_ms: float = 5.0
    default_max_tokens: int = Limits.default_max_tokens  # the request limits' defaults are the protocol's
    max_tokens_cap: int = Limits.max_tokens_cap
    max_images: int = Limits.max_images
    max_image_pixels: int = Limits.max_image_pixels
    max_request_pixels: int = Limits.max_request_pixels
    max_queued_mpixels: float = 256.0
    decode_slots: int = 2
    max_work_tokens: int = Limits.max_work_tokens
    max_model_len: int | None = None
    request_timeout_s: float = Limits.default_timeout_s
    max_request_timeout_s: float = Limits.max_timeout_s
    saturation_wait_s: float = 5.0
    allowed_origins: list[str] = field(default_factory=list)
    max_body_mb: float = 32.0
    max_queue: int = 256
    dtype: str = "float32"
    device: str | None = None
    max_pixels: int | None = None
    threads: int | None = None
    log_level: str = "warning"
    extra_args: list[str] = field(default_factory=list)
    policy_args: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"--backend {self.backend!r} is unknown; use one of {', '.join(BACKENDS)}")
        if not self.model and self.backend != "expert":
            raise ConfigError("--model is required: a checkpoint folder (e.g. one built by 'dppo train build-tiny'), "
                              "or --backend expert to serve the simulated envs' scripted expert")
        if self.model and self.backend == "expert":
            raise ConfigError("--backend expert serves the scripted expert, not a checkpoint: leave --model out")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port {self.port} is out of range 0..65535")
        if self.api_key is not None and not self.api_key.strip():
            raise ConfigError("--api-key is empty; give a real secret or leave it out (loopback only)")
        if not is_loopback(self.host) and not self.api_key:
            raise ConfigError(
                f"refusing to serve on non-loopback host {self.host!r} without an API key: anyone on the network "
                "could use the model. Pass --api-key SECRET (or set DPPO_API_KEY), or bind --host 127.0.0.1 and "
                "reach it through an SSH tunnel")
        for name in ("max_batch_size", "default_max_tokens", "max_tokens_cap", "max_images", "max_queue",
                     "max_image_pixels", "max_request_pixels", "decode_slots", "max_work_tokens"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        if self.max_model_len is not None and self.max_model_len <= self.default_max_tokens:
            raise ConfigError(f"max_model_len {self.max_model_len} leaves no room for a prompt with "
                              f"default_max_tokens {self.default_max_tokens}")
        if self.default_max_tokens > self.max_tokens_cap:
            raise ConfigError(f"default_max_tokens {self.default_max_tokens} exceeds max_tokens_cap "
                              f"{self.max_tokens_cap}")
        if self.default_max_tokens > self.max_work_tokens:
            raise ConfigError(f"default_max_tokens {self.default_max_tokens} exceeds max_work_tokens "
                              f"{self.max_work_tokens}")
        if self.batch_window_ms < 0 or self.max_body_mb <= 0 or self.max_queued_mpixels <= 0:
            raise ConfigError("batch_window_ms must be >= 0, max_body_mb and max_queued_mpixels > 0")
        if not 0 < self.request_timeout_s <= self.max_request_timeout_s:
            raise ConfigError(f"need 0 < request_timeout_s <= max_request_timeout_s, got {self.request_timeout_s} "
                              f"and {self.max_request_timeout_s}")
        if self.saturation_wait_s <= 0:
            raise ConfigError(f"saturation_wait_s must be > 0, got {self.saturation_wait_s}")
        for o in self.allowed_origins:
            if not o.startswith(("http://", "https://")):
                raise ConfigError(f"allowed_origins: {o!r} is not an origin such as http://127.0.0.1:3000")

    @property
    def model_name(self) -> str:
        """The model id served (``served_model_name`` or the checkpoint folder's name)."""
        if self.backend == "expert" and not self.model:
            return self.served_model_name or "expert"
        return self.served_model_name or Path(str(self.model).rstrip("/")).name or str(self.model)

    def limits(self) -> Limits:
        """Request limits derived from this config."""
        return Limits(default_max_tokens=self.default_max_tokens, max_tokens_cap=self.max_tokens_cap,
                      max_images=self.max_images, max_image_pixels=self.max_image_pixels,
                      max_request_pixels=self.max_request_pixels, max_work_tokens=self.max_work_tokens,
                      default_timeout_s=self.request_timeout_s, max_timeout_s=self.max_request_timeout_s)
