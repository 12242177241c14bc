"""Lenient JSON reading for model text: balanced ``{...}``/``[...]`` spans and a linear near-JSON repair.

Models wrap their JSON in prose, use single quotes, Python literals, bare words and trailing commas; these helpers
find the candidate spans and read them without ever raising on model text (no regex that can backtrack).
"""

from __future__ import annotations

import json
import re
from typing import Any

_SPECIAL = re.compile(r'[{}\[\]"\\]')
MAX_REPAIR = 8192
"""Longest span (characters) that :func:`loads_lenient` tries to repair."""
_LITERALS = {"True": "true", "False": "false", "None": "null", "true": "true", "false": "false", "null": "null",
             "NaN": "NaN", "Infinity": "Infinity"}


def json_spans(t: str) -> list[tuple[int, int]]:
    """Balanced ``{...}``/``[...]`` spans (double-quoted strings respected), outermost first, in text order."""
    spans: list[tuple[int, int]] = []
    stack: list[tuple[str, int]] = []
    in_str, skip = False, -1
    for m in _SPECIAL.finditer(t):
        c, p = m.group(), m.start()
        if p == skip:
            continue
        if c == "\\":
            skip = p + 1
        elif c == '"':
            in_str = bool(stack) and not in_str
        elif in_str:
            continue
        elif c in "{[":
            stack.append((c, p))
        elif stack and stack[-1][0] == ("{" if c == "}" else "["):
            spans.append((stack.pop()[1], p + 1))
        else:
            stack.clear()
    return sorted(spans, key=lambda s: (s[0], -s[1]))


def repair(s: str) -> str:
    """Make near-JSON valid: single quotes, Python True/False/None, bare keys/words, trailing commas. Linear."""
    out: list[str] = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c in "\"'":
            j, buf = i + 1, []
            while j < n and s[j] != c:
                if s[j] == "\\" and j + 1 < n:
                    buf.append("'" if s[j + 1] == "'" else s[j: j + 2])
                    j += 2
                    continue
                buf.append('\\"' if s[j] == '"' else "\\n" if s[j] == "\n" else s[j])
                j += 1
            out.append('"' + "".join(buf) + '"')
            i = j + 1
        elif c.isalpha() or c == "_":
            j = i + 1
            while j < n and (s[j].isalnum() or s[j] == "_"):
                j += 1
            out.append(_LITERALS.get(s[i:j]) or json.dumps(s[i:j]))
            i = j
        elif c.isdigit() or c in "+-.":
            j = i + 1
            while j < n and (s[j].isalnum() or s[j] in ".+-"):
                j += 1
            out.append(s[i:j].lstrip("+"))
            i = j
        elif c == ",":
            j = i + 1
            while j < n and s[j].isspace():
                j += 1
            if j >= n or s[j] not in "}]":
                out.append(c)
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


FAIL = object()
"""What :func:`loads_lenient` returns when the text is not JSON even after :func:`repair`."""


def loads_lenient(s: str) -> Any:
    """``json.loads``, else (up to :data:`MAX_REPAIR` characters) ``json.loads(repair(s))``, else :data:`FAIL`."""
    try:
        return json.loads(s)
    except (ValueError, RecursionError):
        pass
    if len(s) > MAX_REPAIR:
        return FAIL
    try:
        return json.loads(repair(s))
    except (ValueError, RecursionError):
        return FAIL
