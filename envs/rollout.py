"""One closed-loop episode with any text policy: ``run_episode(env, act, seed) -> EpisodeResult``.

The runner is the core's (:mod:`dppo_embodied.episode`, re-exported here under its long-standing name): ``act``
gets the step's :class:`~dppo_embodied.conversation.Conversation` (:func:`dppo_embodied.episode.render_step` of
the observation) and returns the model's raw text; nothing it returns can crash the env (invalid text is fed back
as feedback).
"""

from __future__ import annotations

from dppo_embodied.episode import EpisodeResult, run_episode

__all__ = ["EpisodeResult", "run_episode"]
