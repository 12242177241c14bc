"""A :class:`~inference.serving.backend.Backend` over any text policy: conversations in, replies out.

``dppo serve --backend expert`` serves the simulated envs' scripted expert this way: the ``expert`` plugin of the
``dppo_embodied.policies`` entry-point group (declared by the package that provides it, pyproject.toml) is a
:data:`dppo_embodied.episode.Policy` factory, loaded here by name through :class:`~dppo_embodied.registry.Registry`,
so this package names no module of the provider. Replies are returned whole (no sampling, no token limit beyond
``max_tokens`` words), ``n`` identical choices per request.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dppo_embodied.episode import Policy
from dppo_embodied.generation import ChatRequest, GenerationSettings
from dppo_embodied.registry import Registry
from inference.serving.protocol import Completion, apply_stop

#: policies other packages provide (``[project.entry-points."dppo_embodied.policies"]``)
POLICIES: Registry[Any] = Registry("policy", plugins="dppo_embodied.policies")
POLICIES.expect("expert", "sim", help="the simulated envs' scripted expert (keeps a twin of the bridge's episode)")


def _words(text: str) -> int:
    return len(text.split())


class PolicyFnBackend:
    """Serve ``policy`` (a :data:`~dppo_embodied.episode.Policy`): one reply per request, ``n`` copies of it.

    Args:
        policy: ``policy(conversations) -> replies``.
    """

    max_model_len: int | None = None
    keep_pixels: int | None = None

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def generate(self, requests: Sequence[ChatRequest], params: GenerationSettings,
                 deadlines: Sequence[float]) -> list[list[Completion]]:
        """The policy's reply to each request (cut at a stop string), ``params.n`` times."""
        out = []
        for text in self.policy([r.conversation for r in requests]):
            text, _ = apply_stop(str(text), params.stop)
            out.append([Completion(text, "stop", _words(text))] * params.n)
        return out

    def prompt_tokens(self, request: ChatRequest) -> int:
        """Words of the request's text (a policy has no tokenizer)."""
        conv = request.conversation
        return _words(conv.text) + sum(_words(p.get("text", "")) for m in conv.history for p in m["content"])

    def close(self) -> None:
        """Let the policy free what it holds (renderers)."""
        close = getattr(self.policy, "close", None)
        if callable(close):
            close()


def load_policy(name: str, **options: Any) -> Policy:
    """Build the registered policy ``name`` with ``options`` (e.g. ``seed=3`` for the expert).

    Raises:
        UnknownNameError: no such policy is installed (lists the installed ones).
        DependencyNotInstalled: the expert's ``sim`` extra is missing.
    """
    return POLICIES.get(name)(**options)
