"""Text normalisation rules of the official evaluations, reproduced exactly (quirks included).

* :func:`flageval_choice`: FlagEvalMM's ``process_multiple_choice`` (EmbSpatial-Bench). Its ``"[INST]"`` pattern
  is a character class, so it deletes every ``I``, ``N``, ``S`` and ``T``.
* :func:`flageval_normalize`: FlagEvalMM's ``normalize_string`` (RoboSpatial-Home, last line).
* :func:`word_to_num`: the ``word2number`` package's ``w2n.word_to_num`` (VSI-Bench numeric fallback).

These are the rules the Pelican-VL evaluation applies; tests pin their behaviour on realistic outputs. Pelican's
``remove_think`` is the one think/answer normaliser of the whole project,
:func:`dppo_embodied.answer_text.strip_think` (scorers, parsers, rewards and the teacher share it).
"""

from __future__ import annotations

import re

# ------------------------------------------------------------------------------------------ FlagEval choices
_FE_STRIP = [re.compile(p) for p in ("The", "If", "[INST]", "[/INST]", "<Img>", "</Img>")]
_FE_LEAD = re.compile(r"^([A-Z])\.")
_FE_KEYWORDS = ("boxed", "Answer:", "Answer is", "answer is", "option is", "Correct option", "correct option",
                "Answer", "answer", "故选", "选择", "正确选项为", "答案选", "答案为", "答案是", "因此", "答案")
_FE_SPECIAL = re.compile(
    r"[-`\\【】\*\$、,，。.；;:：？\?！!\s\n\u4e00-\u9fff0-9①②③④⑤⑥⑦\[\]\<>a-z=\'\"\(\)\{\}]+")
_CAPS = re.compile(r"[A-Z]")


def flageval_choice(answer: str) -> str:
    """FlagEvalMM ``process_multiple_choice``: the capital letters left after keyword splitting and cleaning.

    >>> flageval_choice("The answer is B.")
    'B'
    >>> flageval_choice("C. the red chair")
    'C'
    """
    for pat in _FE_STRIP:
        answer = pat.sub("", answer)
    answer = answer.strip()
    m = _FE_LEAD.match(answer)
    if m:
        return m.group(1)
    for kw in _FE_KEYWORDS:
        if kw in answer:
            answer = answer.split(kw)[-1]
            break
    answer = _FE_SPECIAL.sub("", answer).split("\n")[-1]
    return "".join(_CAPS.findall(answer))


_FE_WRONG = ("\\times", "不对", "不正确", "×")
_FE_TEXT_OPEN = re.compile(r"\\text\s*\{")
_FE_TEXT_STOP = re.compile(r"[}\n]")
_FE_REPLACE = {"√": "正确", "：": ":", "$": "", "（": "(", "）": ")", "，": ",", "。": ".",
               "变小": "减小", "变大": "增大", "路程": "距离", "\\pi": "π", "＞": ">", "＜": "<", "；": ";"}
_FE_CIRCLED = {"①": "1", "②": "2", "③": "3", "④": "4", "⑤": "5", "⑥": "6", "⑦": "7", "⑧": "8", "⑨": "9",
               "⑩": "10"}
_FE_STRICT = {"错": "错误", "对": "正确", "(F)": "F", "(T)": "T", "(正确)": "正确", "(错误)": "错误", "“T”": "T",
              "“F”": "F"}
_FE_NORM_KEYWORDS = ("Answer:", "Answer is", "answer is", "Answer", "answer", "答案为", "答案是", "解是", "解为",
                     "答案", "结果", "为", "因此", " = ")
_FE_UNIT = re.compile(r"^(\d+)(?:cm|m|km|mm|s|h|kg|g|l|ml|mol|厘米|米|千米|°|毫米|月|秒|小时|克|千克|升|毫升|摩尔)$")


def _unwrap_text(raw: str) -> str:
    r"""FlagEvalMM's ``re.sub(r"\\text\s*\{(.*?)\}", r"\1", raw)`` in linear time.

    The regex restarts its lazy scan at every ``\\text{`` and is quadratic on a run of unclosed ones; here the
    first ``}`` or newline after an opening (``.`` stops at a newline) is found once and reused by the openings
    before it, which is the same match.
    """
    out: list[str] = []
    pos = search = 0
    stop = -1
    while (m := _FE_TEXT_OPEN.search(raw, search)) is not None:
        if stop < m.end():
            end = _FE_TEXT_STOP.search(raw, m.end())
            stop = end.start() if end else len(raw)
        if stop < len(raw) and raw[stop] == "}":
            out += (raw[pos:m.start()], raw[m.end():stop])
            pos = search = stop + 1
        else:
            search = m.start() + 1
    out.append(raw[pos:])
    return "".join(out)


def flageval_normalize(raw: str) -> str:
    """FlagEvalMM ``normalize_string``: text after the answer keyword, punctuation and a unit suffix trimmed.

    >>> flageval_normalize("Answer: yes.")
    'yes'
    """
    if "$" not in raw:
        for w in _FE_WRONG:
            raw = raw.replace(w, "错误")
    raw = _unwrap_text(raw)
    for k, v in _FE_REPLACE.items():
        raw = raw.replace(k, v)
    for k, v in _FE_CIRCLED.items():
        raw = raw.replace(k, v)
    raw = _FE_STRICT.get(raw, raw)
    for kw in _FE_NORM_KEYWORDS:
        if kw in raw:
            raw = raw.split(kw)[-1]
            break
    raw = raw.strip()
    if raw.startswith(":"):
        raw = raw[1:]
    if raw and raw[-1] in ".,:;":
        raw = raw[:-1]
    m = _FE_UNIT.match(raw)
    return (m.group(1) if m else raw).strip()


# ---------------------------------------------------------------------------------------------- word2number
_W2N: dict[str, int | str] = {
    **{w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve thirteen "
                                  "fourteen fifteen sixteen seventeen eighteen nineteen".split())},
    **{w: 10 * (i + 2) for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())},
    "hundred": 100, "thousand": 1000, "million": 1_000_000, "billion": 1_000_000_000, "point": ".",
}
_DECIMAL_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def _formation(words: list[str]) -> int:
    n = [_W2N[w] for w in words]
    if len(n) == 4:
        return n[0] * n[1] + n[2] + n[3]  # type: ignore[operator]
    if len(n) == 3:
        return n[0] * n[1] + n[2]  # type: ignore[operator]
    if len(n) == 2:
        return n[0] * n[1] if 100 in n else n[0] + n[1]  # type: ignore[operator]
    return n[0]  # type: ignore[return-value]  # IndexError on an empty group, as in word2number


def word_to_num(sentence: str) -> int | float:
    """``word2number.w2n.word_to_num``: "two hundred and five" -> 205; raises ``ValueError`` without number words.

    Words are split on whitespace (hyphens become spaces), lower-cased, and only number words are kept.
    """
    if not isinstance(sentence, str):
        raise ValueError("input is not a string")
    s = sentence.replace("-", " ").lower()
    if s.isdigit():
        return int(s)
    words = [w for w in s.strip().split() if w in _W2N]
    if not words:
        raise ValueError("no valid number words found")
    if any(words.count(w) > 1 for w in ("thousand", "million", "billion", "point")):
        raise ValueError("redundant number word")
    decimals: list[str] = []
    if "point" in words:
        k = words.index("point")
        words, decimals = words[:k], words[k + 1:]
    b = words.index("billion") if "billion" in words else -1
    m = words.index("million") if "million" in words else -1
    t = words.index("thousand") if "thousand" in words else -1
    if (t > -1 and (t < m or t < b)) or (m > -1 and m < b):
        raise ValueError("malformed number")
    total: int | float = 0
    if len(words) == 1:
        total += _W2N[words[0]]  # type: ignore[operator]  # "point" alone is a TypeError, as in word2number
    elif words:
        if b > -1:
            total += _formation(words[0:b]) * 1_000_000_000
        if m > -1:
            total += _formation(words[b + 1: m] if b > -1 else words[0:m]) * 1_000_000
        if t > -1:
            if m > -1:
                total += _formation(words[m + 1: t]) * 1000
            elif b > -1:
                total += _formation(words[b + 1: t]) * 1000
            else:
                total += _formation(words[0:t]) * 1000
        if t > -1 and t != len(words) - 1:
            total += _formation(words[t + 1:])
        elif m > -1 and m != len(words) - 1:
            total += _formation(words[m + 1:])
        elif b > -1 and b != len(words) - 1:
            total += _formation(words[b + 1:])
        elif t == -1 and m == -1 and b == -1:
            total += _formation(words)
    if decimals and all(w in _DECIMAL_WORDS for w in decimals):
        total += float("0." + "".join(str(_W2N[w]) for w in decimals))
    return total
