"""Settings of the OpenAI-compatible :class:`~dppo_embodied.client.ChatClient`: :class:`ClientConfig`.

Torch-free. Re-exported by :mod:`dppo_embodied.client`, the usual import path.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from dppo_embodied.errors import ConfigError

__all__ = ["API_KEY_ENV_VARS", "ClientConfig"]

API_KEY_ENV_VARS = ("DPPO_API_KEY", "OPENAI_API_KEY")
"""Environment variables read, in order, when :attr:`ClientConfig.api_key` is ``None``."""


# --------------------------------------------------------------------------------------------------- config


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@dataclass
class ClientConfig:
    """Settings of a :class:`ChatClient`. Validated on construction; errors say how to fix the value.

    Attributes:
        base_url: API root including ``/v1``, e.g. ``"http://127.0.0.1:8000/v1"`` (trailing ``/`` removed).
        model: served model name sent in every request (``GET {base_url}/models`` lists them).
        api_key: bearer token; when ``None`` it is read from ``DPPO_API_KEY`` then ``OPENAI_API_KEY`` (at
            client construction). Never shown in ``repr``.
        timeout_s: limit for each attempt (read/write/pool), in seconds.
        connect_timeout_s: limit for opening a connection, in seconds.
        max_retries: retries after the first attempt (``0`` = a single attempt), made by the ``openai`` SDK
            (connection errors, timeouts, HTTP 408/409/429/5xx; its backoff: 0.5 s doubling up to 8 s, jittered,
            or the server's ``Retry-After`` up to 60 s).
        deadline_s: optional hard wall-clock bound of a whole call (``None`` = unbounded); a call with a
            deadline makes a single attempt.
        concurrency: worker threads of :meth:`ChatClient.chat_many`; also sizes the connection pool.
        max_tokens: default ``max_tokens`` (``None`` = server default).
        temperature: default ``temperature`` (``None`` = server default).
        extra_body: extra JSON fields merged into every request body, e.g.
            ``{"structured_outputs": {"json": schema}}`` or ``{"chat_template_kwargs": {"enable_thinking": False}}``.
    """

    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 60.0
    connect_timeout_s: float = 5.0
    max_retries: int = 3
    deadline_s: float | None = None
    concurrency: int = 8
    max_tokens: int | None = 512
    temperature: float | None = 0.0
    extra_body: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.base_url, str) or not self.base_url.strip():
            raise ConfigError("client base_url is empty; set it to the API root, e.g. 'http://127.0.0.1:8000/v1'")
        url = self.base_url.strip().rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"client base_url {self.base_url!r} is not an http(s) URL; use e.g. 'http://127.0.0.1:8000/v1'"
            )
        for suffix in ("/chat/completions", "/completions", "/models"):
            if url.endswith(suffix):
                raise ConfigError(
                    f"client base_url {self.base_url!r} names an endpoint; use the API root {url[: -len(suffix)]!r}"
                )
        self.base_url = url
        if not isinstance(self.model, str) or not self.model.strip():
            raise ConfigError(f"client model is empty; set it to the served model name (see GET {url}/models)")
        if self.api_key is not None and not isinstance(self.api_key, str):
            raise ConfigError("client api_key must be a string or None (None reads DPPO_API_KEY / OPENAI_API_KEY)")
        for name in ("timeout_s", "connect_timeout_s"):
            v = getattr(self, name)
            if not _is_number(v) or v <= 0:
                raise ConfigError(f"client {name} must be a positive number of seconds, got {v!r}")
        if self.deadline_s is not None and (not _is_number(self.deadline_s) or self.deadline_s <= 0):
            raise ConfigError(
                f"client deadline_s must be a positive number of seconds or None, got {self.deadline_s!r}"
            )
        if not isinstance(self.max_retries, int) or isinstance(self.max_retries, bool) or self.max_retries < 0:
            raise ConfigError(f"client max_retries must be an integer >= 0 (0 = no retry), got {self.max_retries!r}")
        if not isinstance(self.concurrency, int) or isinstance(self.concurrency, bool) or self.concurrency < 1:
            raise ConfigError(f"client concurrency must be an integer >= 1, got {self.concurrency!r}")
        if self.max_tokens is not None and (
            not isinstance(self.max_tokens, int) or isinstance(self.max_tokens, bool) or self.max_tokens < 1
        ):
            raise ConfigError(f"client max_tokens must be a positive integer or None, got {self.max_tokens!r}")
        if self.temperature is not None and (not _is_number(self.temperature) or not 0 <= self.temperature <= 2):
            raise ConfigError(f"client temperature must be in [0, 2] or None, got {self.temperature!r}")
        if not isinstance(self.extra_body, Mapping):
            raise ConfigError(
                f"client extra_body must be a mapping of JSON fields, got {type(self.extra_body).__name__}"
            )
        self.extra_body = dict(self.extra_body)
        reserved = {"model", "messages"} & set(self.extra_body)
        if reserved:
            raise ConfigError(f"client extra_body must not set {sorted(reserved)}; use the model field and chat()")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "client config") -> ClientConfig:
        """Build a config from a mapping (e.g. a YAML section), rejecting unknown keys.

        Args:
            data: the key/value pairs.
            source: where they came from (file and section), used in error messages.

        Returns:
            The validated config.

        Raises:
            ConfigError: unknown or missing key, or invalid value; the message names ``source``.
        """
        valid = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(valid))
        if unknown:
            raise ConfigError(f"{source}: unknown client key(s) {unknown}; valid keys: {', '.join(valid)}")
        missing = [k for k in ("base_url", "model") if k not in data]
        if missing:
            raise ConfigError(f"{source}: missing client key(s) {missing}; e.g. base_url: http://127.0.0.1:8000/v1")
        try:
            return cls(**data)
        except ConfigError as e:
            raise ConfigError(f"{source}: {e}") from None

    def resolved_api_key(self) -> str | None:
        """The API key to send: :attr:`api_key`, else ``$DPPO_API_KEY``, else ``$OPENAI_API_KEY``, else ``None``."""
        if self.api_key:
            return self.api_key
        for var in API_KEY_ENV_VARS:
            v = os.environ.get(var, "").strip()
            if v:
                return v
        return None

    @property
    def api_root(self) -> str:
        """:attr:`base_url` without a trailing ``/v1`` (where vLLM serves ``/health``)."""
        return self.base_url[:-3] if self.base_url.endswith("/v1") else self.base_url
