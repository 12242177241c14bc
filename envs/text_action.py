"""What every text-action env shares: the observation's text spaces and values, and the step guard.

A VLM's raw reply is the action. Whatever it is (a string, None, any object), :func:`begin_step` turns it into text
after checking that the episode can take a step; parsing and feedback are each env's own. Every env's observation
carries the text the policy sees (:func:`text_spaces`, :func:`text_observation`): the instruction, the feedback of
the last action, the history (the last :data:`~dppo_embodied.prompts.HISTORY_STEPS` lines
``"{command} -> {feedback}"``, :func:`dppo_embodied.episode.history_entry`) and the skills the env accepts; so
:func:`dppo_embodied.episode.render_step` needs nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gymnasium import spaces

from dppo_embodied.episode import CHARSET, MAX_TEXT, ascii_text
from dppo_embodied.errors import EnvError
from dppo_embodied.prompts import HISTORY_STEPS

__all__ = ["CHARSET", "MAX_TEXT", "ascii_text", "begin_step", "text_observation", "text_spaces"]


def text_spaces() -> dict[str, spaces.Space[Any]]:
    """The text part of an observation space: ``instruction`` and ``feedback`` (``Text``), ``history`` and
    ``skills`` (``Sequence`` of ``Text``: tuples of strings)."""
    def text() -> spaces.Text:
        return spaces.Text(max_length=MAX_TEXT, min_length=0, charset=CHARSET)

    return {"instruction": text(), "feedback": text(), "history": spaces.Sequence(text()),
            "skills": spaces.Sequence(text())}


def text_observation(instruction: str, feedback: str, history: Sequence[str], skills: Sequence[str]
                     ) -> dict[str, Any]:
    """The text part of an observation: printable ASCII, the last :data:`HISTORY_STEPS` history lines."""
    return {"instruction": ascii_text(instruction), "feedback": ascii_text(feedback),
            "history": tuple(ascii_text(h) for h in history[-HISTORY_STEPS:]),
            "skills": tuple(ascii_text(s) for s in skills)}


def begin_step(action: Any, reset_done: bool, over: bool) -> str:
    """Check that ``step()`` may run and return the action as text (never raises on the action itself).

    Raises:
        EnvError: before the first ``reset()``, or after the episode ended.
    """
    if not reset_done:
        raise EnvError("call reset() before step()")
    if over:
        raise EnvError("the episode is over; call reset() to start a new one")
    return action if isinstance(action, str) else ("" if action is None else repr(action))
