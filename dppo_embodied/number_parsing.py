"""Number and count parsers of model text (:func:`parse_number`, :func:`parse_count`). Stdlib only.

Re-exported by :mod:`dppo_embodied.parsing`, the usual import path; same contract: never raises on model text,
returns the value or a falsy :class:`~dppo_embodied.answer_text.NoAnswer`.
"""

from __future__ import annotations

import math
import re

from dppo_embodied.answer_text import NoAnswer, _clean, _last

__all__ = ["parse_count", "parse_number"]


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
