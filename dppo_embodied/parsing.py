"""Defensive parsers for model text: options, yes/no, numbers, counts, points, boxes, sequences, actions.

Shared by training rewards, benchmark scorers and the robot bridge. Stdlib only (no numpy/torch).

Contract of every ``parse_*`` function: it **never raises on model text** (``None``, non-strings, empty, huge,
adversarial). It returns the typed value or a falsy :class:`NoAnswer` whose ``reason`` is human readable.
Inputs longer than :data:`MAX_CHARS` keep only their tail (answers live at the end) before any regex work,
and no regex here can backtrack catastrophically.

Every parser first applies :func:`strip_think` (the official Pelican ``remove_think``), so reasoning inside
``<think>...</think>`` is never scored. The text-action envelope (``parse_action`` and friends) lives in
:mod:`dppo_embodied.actions` and is re-exported here.

Preprocessing (:class:`NoAnswer`, :func:`strip_think`) lives in :mod:`dppo_embodied.answer_text`, numbers and
counts in :mod:`dppo_embodied.number_parsing`, points and boxes in :mod:`dppo_embodied.points`; everything is
re-exported here, the usual import path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

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
from dppo_embodied.answer_text import MAX_CHARS, NoAnswer, _as_text, _clean, _last, is_answer, strip_think
from dppo_embodied.number_parsing import parse_count, parse_number
from dppo_embodied.points import CONVENTIONS, parse_bbox, parse_points

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
