"""Settings of the SFT teacher (``teacher:`` in a recipe)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dppo_embodied.config import check


@dataclass
class TeacherSettings:
    """Teacher for the SFT phase: fills failures with reasoning + answer, kept only when verified.

    Attributes:
        kind: ``oracle`` (the simulated world's own reasoning and answer), ``openai`` (any OpenAI-compatible
            server, e.g. ``vllm serve``) or ``local`` (a transformers checkpoint).
        base_url: server URL for ``openai`` (``http://host:port/v1``).
        model: served model name for ``openai``; checkpoint path for ``local``.
        api_key_env: environment variable holding the API key (never the key itself).
        with_reasoning: targets carry ``<think>reasoning</think>`` before the answer.
        k_vote: teacher samples per failure; kept when a majority verify (1 = a single verified sample).
        temperature: teacher sampling temperature.
        max_tokens: teacher generation cap.
        timeout_s: per-request timeout.
        max_retries: retries per request before giving up.
        concurrency: parallel requests.
        budget: teacher calls the run may spend (every SFT target = one call, ``k_vote`` with voting; 0 =
            unlimited; :mod:`training.algorithm.teacher_budget`).
        accuracy: ``oracle`` only: below 1, a simulated imperfect teacher that is right with this probability
            (:mod:`training.algorithm.teacher`; its wrong answers are caught by verification).
        capability_accuracy: per-capability accuracy of the simulated teacher (overrides ``accuracy``).
    """

    kind: Literal["oracle", "openai", "local"] = "oracle"
    base_url: str = ""
    model: str = ""
    api_key_env: str = "DPPO_API_KEY"
    with_reasoning: bool = False
    k_vote: int = 1
    temperature: float = 0.7
    max_tokens: int = 512
    timeout_s: float = 60.0
    max_retries: int = 3
    concurrency: int = 8
    budget: int = 0
    accuracy: float = 1.0
    capability_accuracy: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check(self.budget >= 0, "teacher.budget", f"must be >= 0 (0 = unlimited), got {self.budget}")
        for key, acc in [("accuracy", self.accuracy), *((f"capability_accuracy.{c}", a)
                                                        for c, a in self.capability_accuracy.items())]:
            check(0 <= acc <= 1, f"teacher.{key}", f"must be in [0, 1], got {acc}")
        if self.kind == "openai":
            check(self.base_url.startswith(("http://", "https://")), "teacher.base_url",
                  f"an openai teacher needs an http(s) URL such as http://127.0.0.1:8000/v1, got {self.base_url!r}")
            check(bool(self.model), "teacher.model", "an openai teacher needs the served model name")
        if self.kind == "local":
            check(bool(self.model), "teacher.model", "a local teacher needs a checkpoint path in teacher.model")
        check(self.k_vote >= 1, "teacher.k_vote", f"must be >= 1, got {self.k_vote}")
        check(self.max_retries >= 0, "teacher.max_retries", f"must be >= 0, got {self.max_retries}")
