"""The one reading of model text before any parser: :func:`strip_think` (the think/answer normaliser),
:func:`split_think`, the one SFT target builder :func:`target_text`, the :class:`NoAnswer` result and light
LaTeX/markdown cleanup. Stdlib only (no numpy/torch).

:func:`strip_think` is Pelican's official ``remove_think`` (first ``</think>``, first ``<answer>`` block, else the
last closed ``\\boxed{}``): the benchmark scorers, every parser of this package (hence
:func:`dppo_embodied.metrics.score_sample` and the RL rewards) and the teacher use it, so a training reward reads
the same answer as the benchmark metric. :func:`bounded_text` is the one coercion and tail bound of model text:
responses keep their last :data:`MAX_RESPONSE_CHARS` characters, answer parts their last :data:`MAX_CHARS`
characters before the parsers' regexes. Every pattern applied to the bounded text runs in linear time (no nested
ambiguous quantifiers, no lazy scan restarted from every occurrence of an opening tag).

All names are re-exported by :mod:`dppo_embodied.parsing`, the usual import path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["MAX_CHARS", "MAX_RESPONSE_CHARS", "NoAnswer", "answer_part", "bounded_text", "is_answer", "split_think",
           "strip_think", "target_text"]

MAX_CHARS = 20_000
"""The parsers of this package keep only the last ``MAX_CHARS`` characters of longer answer parts."""

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


_ANSWER_OPEN = re.compile("<answer>", re.I)
_ANSWER_CLOSE = re.compile("</answer>", re.I)
_THINK_TAGS = ("</think>", "</thought>")


def _last(pattern: re.Pattern[str], text: str, endpos: int | None = None) -> re.Match[str] | None:
    m = None
    for m in pattern.finditer(text, 0, len(text) if endpos is None else endpos):  # noqa: B007
        pass
    return m


def _last_boxed(text: str) -> str | None:
    """The last ``\\boxed{...}`` (else ``\\fbox{...}``) with its wrapper, when its braces close (official rule)."""
    idx = text.rfind("\\boxed")
    if idx < 0:
        idx = text.rfind("\\fbox")
        if idx < 0:
            return None
    depth = 0
    for i in range(idx, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[idx: i + 1]
    return None


def strip_think(text: object, max_chars: int = MAX_RESPONSE_CHARS) -> str:
    """The one think/answer normaliser: Pelican's ``cot_utils.remove_think``, bounded and linear.

    Benchmark scorers, every parser of this package, the RL rewards and the teacher reduce a response with this
    function, so a training reward and the benchmark metric read the same answer. Rules, in order:

      1. Drop everything up to the **first** ``</think>``, then up to the first ``</thought>`` (case-sensitive).
      2. The stripped content of the **first** ``<answer>...</answer>`` block (case-insensitive), if one closes.
      3. Else the last ``\\boxed{...}`` (else ``\\fbox{...}``) whose braces close, with ``\\boxed{``, every ``}``
         and ``\\text{`` removed (the official quirk: ``\\boxed{\\text{B}}`` gives ``B``).
      4. Else the whole remaining text, stripped (an unclosed ``<answer>`` or a lone ``<think>`` stays in it).

    Identical to the official regexes (``^.*?</think>``, ``<answer>(.*?)</answer>``) on every response up to
    ``max_chars`` characters (longer ones keep their tail, :func:`bounded_text`), in linear time: the official lazy
    ``<answer>(.*?)</answer>`` search restarts at every ``<answer>`` and is quadratic on a run of unclosed tags;
    here the first opening tag is paired with the first closing tag after it, which is the same match (when the
    first opening tag has no closing tag after it, no later one has).

    Args:
        text: raw model output; ``None`` (a thinking model that spent its budget) gives ``""``.
        max_chars: the tail bound (default :data:`MAX_RESPONSE_CHARS`, the official scorers' bound).

    Returns:
        The answer text (never ``None``).
    """
    t = bounded_text(text, max_chars)
    for tag in _THINK_TAGS:
        cut = t.find(tag)
        if cut >= 0:
            t = t[cut + len(tag):]
    opening = _ANSWER_OPEN.search(t)
    if opening is not None:
        closing = _ANSWER_CLOSE.search(t, opening.end())
        if closing is not None:
            return t[opening.end(): closing.start()].strip()
    boxed = _last_boxed(t)
    if boxed:
        t = boxed.replace("\\boxed{", "").replace("}", "").replace("\\text{", "")
    return t.strip()


def split_think(text: object, max_chars: int = MAX_RESPONSE_CHARS) -> tuple[str | None, str]:
    """``(reasoning, answer)`` of a response, cut where :func:`strip_think` cuts.

    ``reasoning`` is the text before the first ``</think>`` (else ``</thought>``) without a leading ``<think>``
    (``<thought>``) tag, stripped; ``None`` when the response has no closing think tag. ``answer`` is
    :func:`strip_think` of the response. The inverse of :func:`target_text`.

    >>> split_think("<think>red is left</think><answer>B</answer>")
    ('red is left', 'B')
    """
    t = bounded_text(text, max_chars)
    reasoning = None
    for tag in _THINK_TAGS:
        cut = t.find(tag)
        if cut >= 0:
            head = t[:cut].lstrip()
            opening = "<" + tag[2:]
            reasoning = (head[len(opening):] if head.startswith(opening) else head).strip()
            break
    return reasoning, strip_think(t, max_chars)


def target_text(answer: str, reasoning: str | None = None) -> str:
    """The one SFT target: ``<think>reasoning</think><answer>answer</answer>`` (the think part only with reasoning).

    Every target (oracle answers, verified teacher outputs, SFT rows) is built here; :func:`split_think` reads it
    back: ``split_think(target_text(a, r)) == (r.strip(), a.strip())`` for any ``a`` and ``r`` without tags.

    >>> target_text("B", "red is left")
    '<think>red is left</think><answer>B</answer>'
    """
    think = f"<think>{reasoning.strip()}</think>" if reasoning and reasoning.strip() else ""
    return f"{think}<answer>{answer}</answer>"


def answer_part(text: object) -> str:
    """:func:`strip_think` of a response, tail-bounded to :data:`MAX_CHARS` for the parsers' regexes."""
    return bounded_text(strip_think(text), MAX_CHARS)


_LATEX_TEXT = re.compile(r"\\(?:text|textbf|textit|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}")
_LATEX_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_LATEX_SCI = re.compile(r"(\d)\s*(?:\\times|\\cdot|×|x)\s*10\s*\^\s*\{?\s*([-+−]?\d+)\s*\}?")
_LATEX_DROP = re.compile(r"\\(?:left|right|[,;:!]|displaystyle)|\$|\*\*|__|`")


def _clean(text: object) -> str:
    """strip_think + light LaTeX/markdown removal (``\\text{B}`` -> B, ``\\frac{1}{2}`` -> 1/2, ``**B**`` -> B)."""
    t = answer_part(text)
    if "\\" in t:
        t = _LATEX_TEXT.sub(r"\1", t)
        t = _LATEX_FRAC.sub(r"\1/\2", t)
        t = t.replace("\\%", "%").replace("\\approx", " approximately ").replace("\\sim", " approximately ")
    t = _LATEX_SCI.sub(r"\1e\2", t)
    return _LATEX_DROP.sub(" ", t).strip()
