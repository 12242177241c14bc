"""Property tests: every public parser survives arbitrary text and returns its typed value or NoAnswer."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dppo_embodied.actions import THEN_CHOICES
from dppo_embodied.parsing import (
    DoneAction,
    MoveAction,
    NoAnswer,
    PointAction,
    SkillAction,
    action_to_json,
    normalize_step,
    parse_action,
    parse_actions,
    parse_bbox,
    parse_count,
    parse_number,
    parse_option,
    parse_points,
    parse_sequence,
    parse_yes_no,
    strip_think,
)

FUZZ = settings(
    max_examples=10_000,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

TOKENS = [
    "<answer>", "</answer>", "<think>", "</think>", "</thought>", "\\boxed{", "\\frac{1}{2}", "\\text{", "}", "{",
    "(", ")", "[", "]", ",", ";", ":", ".", " ", "  ", "\n", "-", "->", "=", "/", "'", '"', "\\", "*", "**", "`",
    "```json\n", "0", "1", "7", "42", "0.5", "0.43", "350", "1000", "-3", "1e309", "-1e309", "nan", "NaN",
    "Infinity", "1/0", "1,234", "A", "B", "C", "I", "a", "b", "J", "Z", "answer", "Answer:", "The answer is",
    "option", "yes", "no", "true", "false", "none", "three", "twenty-one", "hundred", "and", "a dozen", "m", "cm",
    "mm", "m2", "²", "square", "point", "point_2d", "box_2d", "bbox_2d", '{"action":', '{"type":', '"point"',
    '"move"', '"skill"', '"done"', '"x":', '"y":', '"dx_cm":', '"gripper":', '"open"', "True", "None",
    '"name":', '"then":', "DONE", '<point x="', '" y="', '">', '<points coords="', "<|box_start|>", "Step 1:",
    "1.", "2)", "•", "→", "\x00", "\u2212", "İ", "😀",
]

fragment = st.one_of(
    st.sampled_from(TOKENS),
    st.text(max_size=6),
    st.integers(-5000, 5000).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
model_text = st.one_of(
    st.lists(fragment, max_size=30).map("".join),
    st.text(max_size=120),
    st.lists(st.sampled_from(TOKENS), max_size=40).map("".join),
)
image_sizes = st.sampled_from([None, (640, 480), (1, 1), (0, 0), (-5, 10), (1e300, 1e-300)])
conventions = st.sampled_from(["auto", "normalized", "pixels", "thousand", "percent", "gemini_yx", "bogus"])
units = st.sampled_from([None, "cm", "m", "mm", "m2", "cm2", "km", "ft", "parsec", ""])


def finite(*xs: float) -> bool:
    return all(isinstance(x, float) and math.isfinite(x) for x in xs)


def no_answer(x: object) -> bool:
    return isinstance(x, NoAnswer) and isinstance(x.reason, str) and bool(x.reason) and not x


def valid_action(a: Any) -> bool:
    if isinstance(a, PointAction):
        return finite(a.x, a.y) and 0 <= a.x <= 1 and 0 <= a.y <= 1 and a.then in THEN_CHOICES
    if isinstance(a, MoveAction):
        return finite(a.dx_cm, a.dy_cm, a.dz_cm) and a.gripper in ("open", "close", None)
    if isinstance(a, SkillAction):
        return isinstance(a.name, str) and a.name == a.name.strip().lower() and bool(a.name)
    return isinstance(a, DoneAction)


# Each test feeds the same 10,000 generated strings to several parsers (one Hypothesis run per group keeps the
# suite fast): every public parser sees >= 10,000 strings.
@FUZZ
@given(model_text, units)
def test_text_parsers_total(text: str, unit: str | None) -> None:
    assert isinstance(strip_think(text), str)
    assert isinstance(normalize_step(text), str)
    yn = parse_yes_no(text)
    assert no_answer(yn) or yn in ("yes", "no")
    num = parse_number(text, unit=unit)
    assert no_answer(num) or finite(num)  # type: ignore[arg-type]
    count = parse_count(text)
    assert no_answer(count) or (type(count) is int and count >= 0)


@FUZZ
@given(
    model_text,
    st.one_of(st.none(), st.integers(-1, 12)),
    st.one_of(st.none(), st.lists(st.sampled_from(["red cup", "blue", "cup", "", "B", " pick "]), max_size=4)),
)
def test_option_and_sequence_parsers_total(text: str, n: int | None, options: list[str] | None) -> None:
    got = parse_option(text, num_options=n, options=options)
    if not no_answer(got):
        assert isinstance(got, str) and len(got) == 1 and got in "ABCDEFGHIJ"
        if n and n > 0:
            assert got in "ABCDEFGHIJ"[:n]
    seq = parse_sequence(text, options=options)
    if not no_answer(seq):
        assert isinstance(seq, list) and seq and all(isinstance(s, str) and s for s in seq)


@FUZZ
@given(model_text, image_sizes, conventions, st.sampled_from([None, [], ["pick", "Place"]]))
def test_spatial_and_action_parsers_total_and_finite(text: str, size: Any, convention: str, skills: Any) -> None:
    pts = parse_points(text, image_size=size, convention=convention)
    if not no_answer(pts):
        assert isinstance(pts, list) and pts
        for p in pts:
            assert isinstance(p, tuple) and len(p) == 2 and finite(*p)
    box = parse_bbox(text, image_size=size, convention=convention)
    if not no_answer(box):
        assert isinstance(box, tuple) and len(box) == 4 and finite(*box)
        assert box[0] <= box[2] and box[1] <= box[3]
    act = parse_action(text, image_size=size, skills=skills)
    assert no_answer(act) or valid_action(act), act
    if isinstance(act, SkillAction) and skills is not None:
        assert act.name in ("pick", "place")
    acts = parse_actions(text, image_size=size, skills=skills)
    if not no_answer(acts):
        assert isinstance(acts, list) and acts and all(valid_action(a) for a in acts)
        assert no_answer(act) or acts[0] == act


json_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-10**30, 10**30), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["point", "move", "skill", "done", "open", "closed", "grasp", "move to", "0.5", "nan", ""]),
    st.text(max_size=8),
)
json_value = st.recursive(json_scalar, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(
    st.text(max_size=4), kids, max_size=3), max_leaves=8)
action_keys = st.sampled_from(["type", "x", "y", "point", "point_2d", "then", "dx_cm", "dy", "dz_cm", "gripper",
                               "name", "skill", "object", "target", "action", "actions", "thought"])
action_obj = st.dictionaries(action_keys, json_value, max_size=6)


@settings(max_examples=1_500, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.one_of(action_obj, st.builds(lambda d: {"action": d}, action_obj), st.lists(action_obj, max_size=3)),
       image_sizes, st.booleans())
def test_structured_action_json_never_raises(obj: Any, size: Any, python_style: bool) -> None:
    text = json.dumps(obj)
    if python_style:  # the Python-literal spelling a model might emit
        text = text.replace("true", "True").replace("false", "False").replace("null", "None").replace('"', "'")
    got = parse_action(text, image_size=size)
    assert no_answer(got) or valid_action(got), (text, got)
    acts = parse_actions(text, image_size=size)
    assert no_answer(acts) or all(valid_action(a) for a in acts)  # type: ignore[union-attr]


# ---------------------------------------------------------------------------------------------- round trip
unit_float = st.floats(0.0, 1.0)
delta = st.floats(-100.0, 100.0, allow_nan=False, allow_infinity=False)
ident = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzABCXYZ0123456789_- "), min_size=1, max_size=16)
name = ident.filter(lambda s: s.strip() != "")
actions_st = st.one_of(
    st.builds(PointAction, unit_float, unit_float, st.sampled_from(THEN_CHOICES)),
    st.builds(MoveAction, delta, delta, delta, st.sampled_from(["open", "close", None])),
    st.builds(SkillAction, name, st.one_of(st.none(), ident), st.one_of(st.none(), ident)),
    st.just(DoneAction()),
)


@settings(max_examples=5_000, deadline=None, derandomize=True, database=None)
@given(actions_st)
def test_action_json_round_trip(a: Any) -> None:
    s = action_to_json(a)
    back = parse_action(s)
    assert not isinstance(back, NoAnswer), (s, back)
    assert action_to_json(back) == s
    if not isinstance(a, SkillAction):
        assert back == a
