"""Preprocessing shared by every parser of model text: the :class:`NoAnswer` result, :func:`strip_think` and
light LaTeX/markdown cleanup. Stdlib only (no numpy/torch).

Inputs longer than :data:`MAX_CHARS` keep only their tail (answers live at the end) before any regex work.
All names are re-exported by :mod:`dppo_embodied.parsing`, the usual import path.

:func:`bounded_text` is the one coercion and tail bound of model text: the parsers here use it with
:data:`MAX_CHARS`, the official benchmark scorers (:mod:`benchmarks.scoring.normalize`) with
:data:`MAX_RESPONSE_CHARS`. Every pattern applied to the bounded text runs in linear time (no nested ambiguous
quantifiers, no lazy scan restarted from every occurrence of an opening tag).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["MAX_CHARS", "MAX_RESPONSE_CHARS", "NoAnswer", "bounded_text", "is_answer", "strip_think"]

MAX_CHARS = 20_000
"""The parsers of this package keep only the last ``MAX_CHARS`` characters of longer inputs."""

MAX_RESPONSE_CHARS = 64 * 4096
"""The official scorers keep only the last 262,144 characters (256 Ki) of longer responses.

The official runs generate at most ``max_new_tokens=4096`` tokens; Qwen2.5-VL text averages about 4 characters
per token, so a complete official response is ~16 k characters and exceeding this bound needs an average of more
than 64 characters per token over 4,096 tokens: only degenerate output (long runs of whitespace or punctuation
tokens) gets there. Below the bound the scorers are exactly the official rules; above it they score the tail
(where the answer of a run-on response is), in linear time and memory.
"""


@dataclass(frozen=True)
class NoAnswer:
    """An explicit "no answer" result. Falsy, so ``if not parsed:`` works; ``reason`` says why."""

    reason: str

    def __bool__(self) -> bool:
        return False


def is_answer(x: object) -> bool:
    """True when ``x`` is a parsed value rather than a :class:`NoAnswer`."""
    return not isinstance(x, NoAnswer)


# --------------------------------------------------------------------------------------------- preprocessing
def bounded_text(text: object, max_chars: int = MAX_RESPONSE_CHARS) -> str:
    """Coerce model output to ``str`` (None -> "", bytes decoded as UTF-8 with replacement, other objects by
    ``str``) and keep only its last ``max_chars`` characters.

    >>> bounded_text("x" * 10 + "B", max_chars=3)
    'xxB'
    """
    if text is None:
        return ""
    if not isinstance(text, str):
        try:
            text = bytes(text).decode("utf-8", "replace") if isinstance(text, (bytes, bytearray)) else str(text)
        except Exception:
            return ""
    return text[-max_chars:] if len(text) > max_chars else text


def _as_text(text: object) -> str:
    """Coerce anything to ``str`` (None -> ""), keeping only the tail beyond :data:`MAX_CHARS`."""
    return bounded_text(text, MAX_CHARS)


_THINK_CLOSE = re.compile(r"<\s*/\s*(?:think|thought)\s*>", re.I)
_THINK_OPEN = re.compile(r"<\s*(?:think|thought)\s*>", re.I)
_ANS_OPEN = re.compile(r"<\s*answer\s*>", re.I)
_ANS_CLOSE = re.compile(r"<\s*/\s*answer\s*>", re.I)


def _last(pattern: re.Pattern[str], text: str, endpos: int | None = None) -> re.Match[str] | None:
    m = None
    for m in pattern.finditer(text, 0, len(text) if endpos is None else endpos):  # noqa: B007
        pass
    return m


def _boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` with nested braces; an unclosed box runs to the end."""
    i = text.rfind("\\boxed{")
    if i < 0:
        return None
    start = i + len("\\boxed{")
    depth = 1
    for j in range(start, len(text)):
        c = text[j]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[start:j]
    return text[start:]


def strip_think(text: str | None) -> str:
    """The official Pelican ``remove_think``: reduce a response to its answer part.

    Rules, in order:
      1. Drop everything up to and including the **last** ``</think>`` or ``</thought>``; a lone opening
         ``<think>`` tag (truncated reasoning) is removed but its text kept.
      2. If an ``<answer>...</answer>`` block exists, return the content of the **last** one, stripped (it may
         be empty). An ``<answer>`` never closed (truncated) yields the text after it; a lone ``</answer>``
         yields the text before it.
      3. Else the content of the last ``\\boxed{...}`` (nested braces handled).
      4. Else the whole remaining text, stripped.

    Args:
        text: raw model output; ``None`` (e.g. a thinking model that spent its budget) gives ``""``.

    Returns:
        The answer text (never ``None``).
    """
    t = _as_text(text)
    m = _last(_THINK_CLOSE, t)
    if m is not None:
        t = t[m.end():]
    t = _THINK_OPEN.sub(" ", t)
    close = _last(_ANS_CLOSE, t)
    if close is not None:
        opening = _last(_ANS_OPEN, t, close.start())
        return t[opening.end() if opening else 0: close.start()].strip()
    opening = _last(_ANS_OPEN, t)
    if opening is not None:
        return t[opening.end():].strip()
    boxed = _boxed(t)
    return (boxed if boxed is not None else t).strip()


_LATEX_TEXT = re.compile(r"\\(?:text|textbf|textit|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}")
_LATEX_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_LATEX_SCI = re.compile(r"(\d)\s*(?:\\times|\\cdot|×|x)\s*10\s*\^\s*\{?\s*([-+−]?\d+)\s*\}?")
_LATEX_DROP = re.compile(r"\\(?:left|right|[,;:!]|displaystyle)|\$|\*\*|__|`")


def _clean(text: object) -> str:
    """strip_think + light LaTeX/markdown removal (``\\text{B}`` -> B, ``\\frac{1}{2}`` -> 1/2, ``**B**`` -> B)."""
    t = strip_think(text)  # type: ignore[arg-type]
    if "\\" in t:
        t = _LATEX_TEXT.sub(r"\1", t)
        t = _LATEX_FRAC.sub(r"\1/\2", t)
        t = t.replace("\\%", "%").replace("\\approx", " approximately ").replace("\\sim", " approximately ")
    t = _LATEX_SCI.sub(r"\1e\2", t)
    return _LATEX_DROP.sub(" ", t).strip()
