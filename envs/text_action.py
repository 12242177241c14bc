"""What every text-action env shares: the text spaces' charset, ASCII-safe observation text, and the step guard.

A VLM's raw reply is the action. Whatever it is (a string, None, any object), :func:`begin_step` turns it into text
after checking that the episode can take a step; parsing and feedback are each env's own.
"""

from __future__ import annotations

import string
from typing import Any

from dppo_embodied.errors import EnvError

#: Longest instruction/feedback text in an observation.
MAX_TEXT = 1024
#: Characters allowed in the observation and action ``Text`` spaces.
CHARSET = string.printable


def ascii_text(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` with every character outside :data:`CHARSET` replaced by ``?``, cut to ``limit`` characters."""
    t = text.encode("ascii", "replace").decode("ascii")
    t = "".join(c if c in CHARSET else "?" for c in t)
    return t[:limit]


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
