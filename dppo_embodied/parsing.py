"""Defensive parsers for model text: options, yes/no, numbers, counts, points, boxes, sequences, actions.

Shared by training rewards, benchmark scorers and the robot bridge. Stdlib only (no numpy/torch).

Contract of every ``parse_*`` function: it **never raises on model text** (``None``, non-strings, empty, huge,
adversarial). It returns the typed value or a falsy :class:`NoAnswer` whose ``reason`` is human readable.
Inputs longer than :data:`MAX_CHARS` keep only their tail (answers live at the end) before any regex work,
and no regex here can backtrack catastrophically.

Every parser first applies :func:`strip_think` (the official Pelican ``remove_think``), so reasoning inside
``<think>...</think>`` is never scored. The text-action envelope (``parse_action`` and friends) lives in
:mod:`dppo_embodied.actions` and is re-exported here.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # re-exported lazily by __getattr__ below
    from dppo_embodied.actions import (
        Action,
        DoneAction,
        MoveAction,
        PointAction,
        SkillAction,
        action_to_json,
        parse_action,
        parse_actions,
    )

__all__ = [
    "CONVENTIONS",
    "MAX_CHARS",
    "Action",
    "DoneAction",
    "MoveAction",
    "NoAnswer",
    "PointAction",
    "SkillAction",
    "action_to_json",
    "is_answer",
    "normalize_step",
    "parse_action",
    "parse_actions",
    "parse_bbox",
    "parse_count",
    "parse_number",
    "parse_option",
    "parse_points",
    "parse_sequence",
    "parse_yes_no",
    "strip_think",
]

MAX_CHARS = 20_000
"""Longer inputs keep only their last ``MAX_CHARS`` characters."""

_ACTION_NAMES = frozenset(
    {"Action", "DoneAction", "MoveAction", "PointAction", "SkillAction", "action_to_json", "parse_action",
     "parse_actions"}
)


def __getattr__(name: str) -> Any:  # PEP 562: lazy re-export of the action envelope (avoids an import cycle)
    if name in _ACTION_NAMES:
        from dppo_embodied import actions

        return getattr(actions, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
def _as_text(text: object) -> str:
    """Coerce anything to ``str`` (None -> ""), keeping only the tail beyond :data:`MAX_CHARS`."""
    if text is None:
        return ""
    if not isinstance(text, str):
        try:
            text = bytes(text).decode("utf-8", "replace") if isinstance(text, (bytes, bytearray)) else str(text)
        except Exception:
            return ""
    return text[-MAX_CHARS:] if len(text) > MAX_CHARS else text


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


# ---------------------------------------------------------------------------------------------------- options
_FOLLOW_END = re.compile(r"[ \t]*(?:[.,;:!?)\]\"'*’”]|\r?\n|$)")
_NOT_WORD_AFTER = r"(?![A-Za-z0-9\-]|['’][A-Za-z])"
_OPT_BARE = re.compile(
    r"\W*(?:(?:the\s+)?(?:final\s+|correct\s+|best\s+)?(?:answer|option|choice)\s*(?:is\s*)?[:\-]?\s*)?"
    r"[(\[]?([A-Za-z])[)\]]?[\W_]*", re.I)
_OPT_ANSWER = re.compile(
    r"\b(?:final\s+answer|(?:correct|best|right)\s+(?:answer|option|choice)|answer)"
    r"(?:\s+(?:is|would\s+be|should\s+be|will\s+be|must\s+be))?(?:\s*[:=\-])?\s*"
    r"(?:(?:option|choice)(?:\s*[:\-])?\s*)?([(\[\"'‘“])?([A-Za-z])" + _NOT_WORD_AFTER, re.I)
_OPT_START = re.compile(r"\s*[(\[]?([A-Za-z])(?:[)\]]|[.:](?![A-Za-z]\.))")
_OPT_PAREN = re.compile(r"[(\[]([A-Z])[)\]]")
_OPT_PHRASE = re.compile(r"\b(?:option|choice)(?:\s*[:#])?\s*([(\[\"'‘“])?([A-Za-z])" + _NOT_WORD_AFTER, re.I)
_OPT_END = re.compile(r"(?<![A-Za-z0-9])([A-Z])[\s.)\]!\"'*’”]*$")
_OPT_DELIM = re.compile(r"(?<![A-Za-z0-9])([A-Z])[.):](?![A-Za-z0-9])")
_OPT_SOLO = re.compile(r"(?<![A-Za-z0-9\-.])([A-Z])(?!\.[A-Za-z])" + _NOT_WORD_AFTER)  # not "E.g."/"U.S."
_ARTICLE_LIKE = re.compile(r"\s+[a-z]|['’]")


def _strict_ok(text: str, m: re.Match[str]) -> bool:
    """"a"/"i" (either case) count only when bracketed/quoted or followed by punctuation or end of line."""
    return m.group(2).upper() not in "AI" or bool(m.group(1)) or _FOLLOW_END.match(text, m.end(2)) is not None


def _option_text_match(text: str, options: Sequence[str], valid: str) -> str | None:
    resp = f" {normalize_step(text)} "
    hits = []
    for i, opt in enumerate(options[: len(valid)]):
        norm = normalize_step(str(opt))
        if norm and f" {norm} " in resp:
            hits.append((i, norm))
    hits = [(i, n) for i, n in hits if not any(n != o and n in o for _, o in hits)]
    return valid[hits[0][0]] if len(hits) == 1 else None


def _option(t: str, valid: str, options: list[str] | None) -> str | NoAnswer:
    if len(t) <= 60 and (m := _OPT_BARE.fullmatch(t)) and m.group(1).upper() in valid:
        return m.group(1).upper()
    found = [m.group(2).upper() for m in _OPT_ANSWER.finditer(t) if m.group(2).upper() in valid and _strict_ok(t, m)]
    if found:
        return found[-1]
    if (m := _OPT_START.match(t)) and m.group(1).upper() in valid:
        return m.group(1).upper()
    found = [m.group(1) for m in _OPT_PAREN.finditer(t) if m.group(1) in valid]
    if found:
        return found[-1]
    found = [m.group(2).upper() for m in _OPT_PHRASE.finditer(t) if m.group(2).upper() in valid and _strict_ok(t, m)]
    if found:
        return found[-1]
    if (m := _OPT_END.search(t)) and m.group(1) in valid and m.group(1) != "I":
        return m.group(1)
    found = [m.group(1) for m in _OPT_DELIM.finditer(t) if m.group(1) in valid and m.group(1) != "I"]
    if found:
        return found[-1]
    solo = [m for m in _OPT_SOLO.finditer(t) if m.group(1) in valid]
    for m in solo:
        if m.group(1) not in "AI" or not _ARTICLE_LIKE.match(t, m.end()):
            return m.group(1)
    if options and (hit := _option_text_match(t, options, valid)):
        return hit
    if any(m.group(1) == "A" for m in solo):
        return "A"
    return NoAnswer("no option letter found")


def parse_option(
    text: str | None,
    num_options: int | None = None,
    letters: str = "ABCDEFGHIJ",
    options: list[str] | None = None,
) -> str | NoAnswer:
    """Extract a multiple-choice letter (upper case) from a response.

    After :func:`strip_think` and LaTeX/markdown cleanup, the first tier that yields a valid letter wins:
      1. the whole response is one letter, optionally bracketed/prefixed ("b", "(C)", "**B**", "Option B");
      2. an answer phrase ("The answer is (B)", "Answer: B", "answer is b", "correct option is C"); last wins;
      3. a leading "X." / "X)" / "X:" / "(X)" ("B. red cup", "B) ...");
      4. an upper-case "(X)" or "[X]" anywhere; last wins;
      5. "option X" / "choice X"; last wins;
      6. an upper-case letter ending the response ("... so it's C.");
      7. an upper-case "X." / "X)" / "X:" anywhere; last wins;
      8. a standalone upper-case letter, skipping the article "A" and the pronoun "I" (followed by a lower-case
         word or an apostrophe); **first** wins (COSMOS/EgoPlan "first capital" rule);
      9. if ``options`` (texts) are given: the option text found uniquely (whole words, case-insensitive;
         an option contained in another matched one is ignored);
      10. last resort: the article "A" (never the pronoun "I").
    In tiers 2 and 5 the letters "a"/"i" (either case) count only when bracketed/quoted or followed by
    punctuation or end of line ("The answer is a red cup" is not option A); tiers 6-7 never return "I".

    Args:
        text: model output.
        num_options: restrict to the first ``num_options`` letters (default: ``len(options)`` or all).
        letters: the option alphabet (ASCII letters; option i is ``letters[i]``).
        options: option texts, for the text-matching fallback.

    Returns:
        The letter, or :class:`NoAnswer`.
    """
    try:
        n = num_options if num_options and num_options > 0 else (len(options) if options else len(letters))
        t = _clean(text)
        return _option(t, str(letters).upper()[:n], options) if t else NoAnswer("empty response")
    except Exception as e:  # pragma: no cover - defensive: parsers never raise on model text
        return NoAnswer(f"unparsable response ({type(e).__name__})")


# ----------------------------------------------------------------------------------------------------- yes/no
_YES = frozenset({"yes", "yeah", "yep", "true"})
_YN_LEAD = re.compile(r"[\W_]*(yes|yeah|yep|no|nope|true|false)\b", re.I)
_YN_BOTH = re.compile(r"\s*(?:/|\bor\b|\band\b)\s*(yes|no|true|false)\b", re.I)
_YN_ANSWER = re.compile(r"\banswer\b(?:\s*(?:is|would\s+be))?(?:\s*[:\-])?\s*[\"'(]?(yes|no|true|false)\b", re.I)
_YN_ANY = re.compile(r"\b(yes|no|true|false)\b", re.I)
_DETERMINER = re.compile(r"[ \t]+[a-z]")


def _polarity(word: str) -> str:
    return "yes" if word.lower() in _YES else "no"


def parse_yes_no(text: str | None) -> str | NoAnswer:
    """Extract ``"yes"`` or ``"no"``.

    Rules: (1) a leading yes/no/true/false (also yeah/yep/nope: "Yes.", "No, because ...", "**True**") wins,
    unless immediately paired with the opposite one ("Yes or no", "yes/no") -> ambiguous; (2) else the last
    "answer is yes/no"; (3) else the standalone yes/no/true/false words anywhere: one polarity -> it, both ->
    :class:`NoAnswer` (ambiguous); here "no" followed by a lower-case word ("no cup") is a determiner, not an answer.

    Args:
        text: model output.

    Returns:
        ``"yes"``, ``"no"`` or :class:`NoAnswer`.
    """
    try:
        t = _clean(text)
        if not t:
            return NoAnswer("empty response")
        if m := _YN_LEAD.match(t):
            first = _polarity(m.group(1))
            both = _YN_BOTH.match(t, m.end())
            if both and _polarity(both.group(1)) != first:
                return NoAnswer("ambiguous: both yes and no")
            return first
        if m := _last(_YN_ANSWER, t):
            return _polarity(m.group(1))
        seen = {_polarity(m.group(1)) for m in _YN_ANY.finditer(t)
                if m.group(1).lower() != "no" or not _DETERMINER.match(t, m.end())}
        if len(seen) == 1:
            return seen.pop()
        return NoAnswer("ambiguous: both yes and no" if seen else "no yes/no answer found")
    except Exception as e:  # pragma: no cover
        return NoAnswer(f"unparsable response ({type(e).__name__})")


# ---------------------------------------------------------------------------------------------------- numbers
_NUM = re.compile(
    r"(?<![\w.])([-+−]?)((?:\d{1,3}(?:,\d{3}(?!\d))+|\d+)(?:\.\d+)?|\.\d+)(?:[eE]([-+]?\d+))?"
    r"(?:\s*/\s*(\d+(?:\.\d+)?)(?![\d/]))?")
_WORD = re.compile(r"[A-Za-z]+")
_UNIT_WORDS = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen"
_UNITS = {w: i for i, w in enumerate(f"{_UNIT_WORDS} seventeen eighteen nineteen".split())}
_TENS_WORDS = "twenty thirty forty fifty sixty seventy eighty ninety"
_TENS = {w: 10 * (i + 2) for i, w in enumerate(_TENS_WORDS.split())}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9}
_NUM_WORDS = {**_UNITS, **_TENS, **_SCALES, "dozen": 12}
_NUM_ANSWER = re.compile(r"\b(?:final\s+answer|answer|result)\b\s*(?:is|would\s+be|should\s+be|will\s+be)?\s*[:=]?",
                         re.I)
_NUM_APPROX = re.compile(r"=|≈|~|\b(?:approximately|approx|about|around|roughly|estimated)\b", re.I)
_LEN_MM = {"mm": 1.0, "cm": 10.0, "m": 1000.0, "km": 1e6, "in": 25.4, "ft": 304.8, "yd": 914.4}
_UNIT_RE = re.compile(
    r"\s*(?:(square|sq\.?|cubic)\s*)?"
    r"(millimet(?:er|re)s?|centimet(?:er|re)s?|kilomet(?:er|re)s?|met(?:er|re)s?|inch(?:es)?|feet|foot|ft|"
    r"yards?|yd|mm|cm|km|m)(?:\s*\^\s*([23])|([²³])|([23])(?!\d)|\s+(squared|cubed))?(?![A-Za-z0-9])", re.I)


def _unit(m: re.Match[str]) -> tuple[float, int]:
    """(millimetres per unit, power) of a :data:`_UNIT_RE` match."""
    name = m.group(2).lower()
    key = ("mm" if name.startswith("milli") else "cm" if name.startswith("centi") else "km"
           if name.startswith("kilo") else "m" if name.startswith("met") else "in" if name.startswith("inch")
           else "ft" if name in ("feet", "foot") else "yd" if name.startswith("yard") else name)
    power = 1
    pre, caret, sup, digit, word = ((m.group(i) or "").lower() for i in (1, 3, 4, 5, 6))
    if pre.startswith(("square", "sq")) or "2" in caret + digit or sup == "²" or word == "squared":
        power = 2
    if pre == "cubic" or "3" in caret + digit or sup == "³" or word == "cubed":
        power = 3
    return _LEN_MM[key], power


def _digit_numbers(t: str) -> list[tuple[float, int]]:
    out = []
    for m in _NUM.finditer(t):
        try:
            v = float(m.group(2).replace(",", "") + (f"e{m.group(3)}" if m.group(3) else ""))
            if m.group(4):
                den = float(m.group(4))
                v = v / den if den else math.inf
            if m.group(1) in ("-", "−"):
                v = -v
        except (ValueError, OverflowError):
            continue
        if math.isfinite(v):
            out.append((v, m.end()))
    return out


def _word_numbers(t: str) -> list[tuple[float, int]]:
    """Runs of number words ("twenty-one", "one hundred and five", "a dozen") as (value, end index)."""
    out: list[tuple[float, int]] = []
    words = [(m.group().lower(), m.start(), m.end()) for m in _WORD.finditer(t)]
    i = 0
    while i < len(words):
        w = words[i][0]
        nxt = words[i + 1][0] if i + 1 < len(words) else ""
        if w not in _NUM_WORDS and not (w == "a" and nxt in ("dozen", "hundred", "thousand", "million")):
            i += 1
            continue
        total = current = 0
        j, end = i, words[i][2]
        while j < len(words):
            w, s, e = words[j]
            if j > i and t[words[j - 1][2]:s].strip(" -") != "":
                break
            if w == "a" and j == i:
                current = 1
            elif w == "and" and j > i and words[j - 1][0] in _SCALES and j + 1 < len(words) and (
                    words[j + 1][0] in _NUM_WORDS):
                pass
            elif w in _UNITS or w in _TENS:
                prev = words[j - 1][0] if j > i else ""
                if prev in _UNITS or (prev in _TENS and not 0 < _UNITS.get(w, 0) < 10):
                    break
                current += _UNITS.get(w, 0) + _TENS.get(w, 0)
            elif w == "dozen":
                current = (current or 1) * 12
            elif w == "hundred":
                current = (current or 1) * 100
            elif w in _SCALES:
                total += (current or 1) * _SCALES[w]
                current = 0
            else:
                break
            end = e if w != "and" else end
            j += 1
        out.append((float(total + current), end))
        i = j
    return out


def parse_number(text: str | None, unit: str | None = None) -> float | NoAnswer:
    """Extract one number, optionally converted to ``unit``.

    Numbers: integers, decimals, signs (also U+2212), thousands separators ("1,234"), scientific ("1e-3",
    "2 \\times 10^{3}"), fractions ("1/2", ``\\frac{1}{2}``) and number words ("three", "twenty-one",
    "one hundred and five", "a dozen"). Non-finite values are skipped.

    Which number (official VSI/Pelican rule, extended): after :func:`strip_think`, if an answer phrase
    ("answer is", "final answer:", "result") occurs, the first number after its **last** occurrence; else after
    the last approximation/equality marker ("=", "≈", "approximately", "about", "around", "roughly"); else the
    **first** number in the text. Digit numbers are preferred over number words within the same region.

    Units: without ``unit`` the number is returned as written. With ``unit`` (length/area/volume: "mm", "cm",
    "m", "km", "in", "ft", "yd", with "2"/"3", "^2", "²" or "square"/"sq" for area/volume), a value written with
    another unit of the same dimension is converted ("0.5 m" -> 50.0 for ``unit="cm"``); a value without a unit,
    with a different dimension, or an unknown ``unit`` is returned as written.

    Args:
        text: model output.
        unit: the expected unit, or ``None``.

    Returns:
        The number as ``float``, or :class:`NoAnswer`.
    """
    try:
        t = _clean(text)
        if not t:
            return NoAnswer("empty response")
        found: tuple[float, int] | None = None
        for region in _number_regions(t):
            cands = _digit_numbers(region[0]) or _word_numbers(region[0])
            if cands:
                found = (cands[0][0], cands[0][1] + region[1])
                break
        if found is None:
            return NoAnswer("no number found")
        value, end = found
        if unit and (um := _UNIT_RE.match(t, end)) and (target := _UNIT_RE.fullmatch(" " + str(unit).strip())):
            (fw, pw), (ft, pt) = _unit(um), _unit(target)
            if pw == pt:
                value = value * fw**pw / ft**pt
        return value if math.isfinite(value) else NoAnswer("number is not finite")
    except Exception as e:  # pragma: no cover
        return NoAnswer(f"unparsable response ({type(e).__name__})")


def _number_regions(t: str) -> list[tuple[str, int]]:
    regions = []
    for pat in (_NUM_ANSWER, _NUM_APPROX):
        if m := _last(pat, t):
            regions.append((t[m.end():], m.end()))
    regions.append((t, 0))
    return regions


_NONE = re.compile(r"[\W_]*(?:none|nothing)\b", re.I)


def parse_count(text: str | None) -> int | NoAnswer:
    """A non-negative integer count: :func:`parse_number` rounded half up ("3.0" -> 3, "three" -> 3).

    A response with no number that starts with "none"/"nothing" counts 0.

    Args:
        text: model output.

    Returns:
        The count, or :class:`NoAnswer` (no number, or a negative one).
    """
    v = parse_number(text)
    if isinstance(v, NoAnswer):
        return 0 if _NONE.match(_clean(text)) else v
    if v < 0:
        return NoAnswer(f"count must be non-negative, got {v:g}")
    return math.floor(v + 0.5)


# ------------------------------------------------------------------------------------------- points and boxes
_C = r"([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)"
_SEP = r"(?:\s*,\s*|\s+)"
_PAIR = re.compile(rf"[(\[]\s*{_C}{_SEP}{_C}\s*[)\]]")
_QUAD = re.compile(rf"[(\[]\s*{_C}{_SEP}{_C}{_SEP}{_C}{_SEP}{_C}\s*[)\]]")
_QWEN_BOX = re.compile(rf"<\|box_start\|>\s*\(\s*{_C}{_SEP}{_C}\s*\){_SEP}?\(\s*{_C}{_SEP}{_C}\s*\)")
_XY = re.compile(rf"(?<![A-Za-z0-9_])[\"']?x[\"']?\s*[:=]\s*[\"']?{_C}[\"']?(?:\s*[,;])?\s*"
                 rf"[\"']?y[\"']?\s*[:=]\s*[\"']?{_C}", re.I)
_KEY_BEFORE = re.compile(r"([\"'])([A-Za-z_0-9]+)\1\s*:\s*$")  # a quoted JSON key right before the value
_MOLMO_TAG = re.compile(r"<\s*points?\b([^<>]*)>", re.I)
_ATTR = re.compile(r"([A-Za-z_][\w-]*)\s*=\s*[\"']([^\"']*)[\"']")
_MOLMO2 = re.compile(r"(\d+)\s+(\d{3,4})\s+(\d{3,4})")
CONVENTIONS = ("auto", "normalized", "pixels", "thousand", "percent", "gemini_yx")


def _key_before(t: str, pos: int) -> str:
    m = _KEY_BEFORE.search(t, max(0, pos - 24), pos)
    return m.group(2).lower() if m else ""


def _scale(vals: list[str], conv: str, size: tuple[float, float] | None, thousand_auto: bool = False
           ) -> list[float] | None:
    """Convert x/y-interleaved raw numbers to normalized floats; ``None`` if not convertible."""
    try:
        v = [float(s) for s in vals]
    except ValueError:
        return None
    if conv == "auto":
        if thousand_auto:
            conv = "thousand" if any(abs(a) > 1 for a in v) else "normalized"
        elif any("." in s or "e" in s.lower() for s in vals):
            conv = "normalized"
        elif size:
            conv = "pixels"
        else:
            conv = "thousand" if any(abs(a) > 1 for a in v) else "normalized"
    if conv == "pixels":
        return [a / size[i % 2] for i, a in enumerate(v)] if size else None
    div = {"thousand": 1000.0, "gemini_yx": 1000.0, "percent": 100.0}.get(conv, 1.0)
    return [a / div for a in v]


def _size(image_size: object) -> tuple[float, float] | None:
    try:
        w, h = (float(s) for s in image_size)  # type: ignore[union-attr]
    except Exception:
        return None
    return (w, h) if w > 0 and h > 0 and math.isfinite(w) and math.isfinite(h) else None


def _molmo_points(t: str) -> list[tuple[float, float]]:
    pts: list[tuple[float, float]] = []
    for tag in _MOLMO_TAG.finditer(t):
        attrs = {k.lower(): v for k, v in _ATTR.findall(tag.group(1))}
        raw: list[tuple[str, str, float]] = []
        if "coords" in attrs:  # Molmo2: "x y" or "<idx> x y <idx> x y ...", 0-1000
            nums = attrs["coords"].replace(";", " ").split()
            if len(nums) == 2:
                raw.append((nums[0], nums[1], 1000.0))
            else:
                raw += [(m.group(2), m.group(3), 1000.0) for m in _MOLMO2.finditer(attrs["coords"])]
        if "x" in attrs and "y" in attrs:  # Molmo v1 percent: x/y or x1/y1, x2/y2, ...
            raw.append((attrs["x"], attrs["y"], 100.0))
        i = 1
        while f"x{i}" in attrs and f"y{i}" in attrs:
            raw.append((attrs[f"x{i}"], attrs[f"y{i}"], 100.0))
            i += 1
        for x, y, div in raw:
            try:
                pts.append((float(x) / div, float(y) / div))
            except ValueError:
                continue
    return pts


def parse_points(
    text: str | None, image_size: tuple[int, int] | None = None, convention: str = "auto"
) -> list[tuple[float, float]] | NoAnswer:
    """Extract 2D points as **normalized** ``(x, y)`` (origin top-left, x right).

    Formats: bracketed pairs anywhere ("(0.43, 0.61)", "[(0.1,0.2),(0.3,0.4)]", "[x, y]", nested lists,
    JSON ``{"point_2d": [x, y]}``), ``{"x": .., "y": ..}`` objects, Gemini ``{"point": [y, x]}`` (y first,
    0-1000), Molmo ``<point x="61.5" y="40.6">`` / ``<points x1=.. y1=.. x2=..>`` (percent) and Molmo2
    ``coords="x y"`` (0-1000). Molmo tags, when present, are used alone and always with their own scale.

    Conventions: ``"normalized"`` (0-1), ``"pixels"`` (divide by ``image_size`` = (W, H)), ``"thousand"``
    (0-1000), ``"percent"`` (0-100), ``"gemini_yx"`` (every pair y first, 0-1000), ``"auto"``:
    the RoboPoint/official rule per pair: any decimal point (or exponent) -> normalized; integers -> pixels if
    ``image_size`` is given, else 0-1000 if any value > 1, else normalized. Under ``"auto"`` a pair under the
    quoted JSON key ``"point"`` is Gemini's: y first, 0-1000 if any value > 1 (``"point_2d"`` stays x first).

    Points outside [0, 1] after conversion are kept (scorers give them 0); NaN/inf are dropped.
    4-tuples (boxes) are not points: use :func:`parse_bbox`.

    Args:
        text: model output.
        image_size: ``(width, height)`` in pixels.
        convention: one of :data:`CONVENTIONS`.

    Returns:
        A non-empty list of points, or :class:`NoAnswer`.
    """
    try:
        if convention not in CONVENTIONS:
            return NoAnswer(f"unknown convention {convention!r}; valid: {', '.join(CONVENTIONS)}")
        t = strip_think(text)
        size = _size(image_size) if image_size is not None else None
        pts = _molmo_points(t)
        if not pts:
            found: list[tuple[int, list[float] | None]] = []
            for m in _PAIR.finditer(t):
                gem = convention == "gemini_yx" or (convention == "auto" and _key_before(t, m.start()) == "point")
                v = _scale([m.group(1), m.group(2)], convention, size, thousand_auto=gem)
                found.append((m.start(), None if v is None else ([v[1], v[0]] if gem else v)))
            for m in _XY.finditer(t):
                found.append((m.start(), _scale([m.group(1), m.group(2)], convention, size)))
            if found and all(v is None for _, v in found):
                return NoAnswer("pixel coordinates need image_size")
            pts = [(v[0], v[1]) for _, v in sorted(found, key=lambda f: f[0]) if v is not None]
        pts = [p for p in pts if math.isfinite(p[0]) and math.isfinite(p[1])]
        return pts if pts else NoAnswer("no points found; expected e.g. [(0.43, 0.61)]")
    except Exception as e:  # pragma: no cover
        return NoAnswer(f"unparsable response ({type(e).__name__})")


def parse_bbox(
    text: str | None, image_size: tuple[int, int] | None = None, convention: str = "auto"
) -> tuple[float, float, float, float] | NoAnswer:
    """Extract the **first** box as normalized ``(x0, y0, x1, y1)`` with ``x0 <= x1`` and ``y0 <= y1``.

    Formats: "[x0, y0, x1, y1]", "(x0, y0, x1, y1)", JSON ``{"bbox_2d": [...]}`` (x first), Gemini
    ``{"box_2d": [ymin, xmin, ymax, xmax]}`` (0-1000), Qwen2-VL ``<|box_start|>(x0,y0),(x1,y1)``. Scale rules are
    those of :func:`parse_points` (``"auto"``: decimals -> normalized; integers -> pixels with ``image_size``,
    else 0-1000 if any value > 1). A quoted ``"box_2d"`` key under ``"auto"`` (and every box under
    ``"gemini_yx"``) is read as Gemini's [ymin, xmin, ymax, xmax] on 0-1000.

    Args:
        text: model output.
        image_size: ``(width, height)`` in pixels.
        convention: one of :data:`CONVENTIONS`.

    Returns:
        The box, or :class:`NoAnswer`.
    """
    try:
        if convention not in CONVENTIONS:
            return NoAnswer(f"unknown convention {convention!r}; valid: {', '.join(CONVENTIONS)}")
        t = strip_think(text)
        size = _size(image_size) if image_size is not None else None
        cands = [(m.start(), m) for m in _QUAD.finditer(t)] + [(m.start(), m) for m in _QWEN_BOX.finditer(t)]
        for _, m in sorted(cands, key=lambda c: c[0]):
            raw = list(m.groups())
            gem = convention == "gemini_yx" or (convention == "auto" and _key_before(t, m.start()) == "box_2d")
            if gem:
                raw = [raw[1], raw[0], raw[3], raw[2]]
            v = _scale(raw, convention, size, thousand_auto=gem)
            if v is None:
                return NoAnswer("pixel coordinates need image_size")
            if all(math.isfinite(a) for a in v):
                return (min(v[0], v[2]), min(v[1], v[3]), max(v[0], v[2]), max(v[1], v[3]))
        return NoAnswer("no bounding box found; expected e.g. [x0, y0, x1, y1]")
    except Exception as e:  # pragma: no cover
        return NoAnswer(f"unparsable response ({type(e).__name__})")


# -------------------------------------------------------------------------------------------------- sequences
_STEP_PUNCT = re.compile(r"[^\w\s]+")
_SPACES = re.compile(r"\s+")
_NUMBERED = re.compile(r"^[ \t]*(?:[-*•][ \t]*)?(?:step[ \t]*)?(\d{1,3})[ \t]*[.):\-][ \t]+(\S.*)$", re.I | re.M)
_INLINE_NUM = re.compile(r"(?:^|(?<=\s))(?:step\s*)?(\d{1,2})[.):]\s+", re.I)
_BULLET = re.compile(r"^[ \t]*[-*•][ \t]+(\S.*)$", re.M)
_ARROW = re.compile(r"-{1,3}>|→|=>|⇒|⟶")
_LETTERS_SEQ = re.compile(r"[A-J](?:(?:\s*[,;])?\s*[A-J]){1,9}")
_LIST_PREFIX = re.compile(r"^(?:and\s+then|then|and|finally|next)\s+", re.I)


def normalize_step(s: str) -> str:
    """Canonical form of a step for comparison: lower case, punctuation removed, whitespace collapsed."""
    try:
        return _SPACES.sub(" ", _STEP_PUNCT.sub(" ", _as_text(s).lower()).replace("_", " ")).strip()
    except Exception:  # pragma: no cover
        return ""


def _tidy(item: str) -> str:
    return _LIST_PREFIX.sub("", item.strip().strip("\"'`*").strip()).rstrip(" .;,:!").strip().strip("\"'`*")


def _json_list(t: str) -> list[str] | None:
    i, j = t.find("["), t.rfind("]")
    if i < 0 or j <= i:
        return None
    data = None
    for cand in (t[i: j + 1], t[i: j + 1].replace("'", '"')):
        try:
            data = json.loads(cand)
            break
        except (ValueError, RecursionError):
            continue
    if not isinstance(data, list) or not data:
        return None
    items = []
    for d in data:
        if isinstance(d, dict):
            d = next((v for v in d.values() if isinstance(v, str)), None)
        if isinstance(d, (str, int, float)) and not isinstance(d, bool):
            items.append(str(d))
    return items or None


def _split_sequence(t: str) -> list[str]:
    if (items := _json_list(t)) is not None:
        return items
    numbered = _NUMBERED.findall(t)
    if len(numbered) >= 2:
        return [s for _, s in numbered]
    bullets = _BULLET.findall(t)
    if len(bullets) >= 2:
        return bullets
    inline = list(_INLINE_NUM.finditer(t))
    if len(inline) >= 2 and [int(m.group(1)) for m in inline] == list(range(1, len(inline) + 1)):
        return [t[m.end(): (inline[k + 1].start() if k + 1 < len(inline) else len(t))] for k, m in enumerate(inline)]
    if numbered and t.strip().count("\n") == 0:
        return [numbered[0][1]]
    if _ARROW.search(t):
        return _ARROW.split(t)
    if len(t) < 64 and _LETTERS_SEQ.fullmatch(t.strip(" .")):
        return re.findall(r"[A-J]", t)
    lines = [ln for ln in t.splitlines() if ln.strip()]
    if len(lines) >= 2:
        return lines
    return t.split(";") if ";" in t else t.split(",")


def parse_sequence(text: str | None, options: list[str] | None = None) -> list[str] | NoAnswer:
    """Extract an ordered list of steps.

    The first structure found wins: a JSON list (strings; dicts give their first string value) ->
    numbered lines ("1. pick red", "Step 2: place") -> bullet lines -> inline numbering "1. a 2. b" (must count
    1, 2, ...) -> arrows "a -> b -> c" -> a letter sequence "B, A, C" / "BAC" (letters A-J) -> non-empty lines ->
    semicolon, else comma, separated items. Items keep their text, stripped of whitespace, quotes, leading
    "then"/"and", and trailing punctuation; compare them with :func:`normalize_step`.

    With ``options`` (step texts): an item that is a single letter within range becomes that option's text,
    and an item whose normalized text contains exactly one option's normalized text becomes that option.

    Args:
        text: model output.
        options: optional option texts (option A = ``options[0]``).

    Returns:
        A non-empty list of steps, or :class:`NoAnswer`.
    """
    try:
        t = _clean(text)
        if not t:
            return NoAnswer("empty response")
        items = [s for s in (_tidy(s) for s in _split_sequence(t)) if s]
        if options:
            opts = [str(o) for o in options]
            norms = [normalize_step(o) for o in opts]
            mapped = []
            for s in items:
                if len(s) == 1 and s.upper() in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[: len(opts)]:
                    s = opts[ord(s.upper()) - 65].strip() or s
                else:
                    ns = f" {normalize_step(s)} "
                    hits = [o for o, n in zip(opts, norms, strict=True) if n and f" {n} " in ns]
                    s = hits[0].strip() if len(hits) == 1 else s
                mapped.append(s)
            items = mapped
        return items if items else NoAnswer("no steps found")
    except Exception as e:  # pragma: no cover
        return NoAnswer(f"unparsable response ({type(e).__name__})")
