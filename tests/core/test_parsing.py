"""Unit tests for dppo_embodied.parsing / dppo_embodied.actions on realistic and adversarial model outputs."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from dppo_embodied import actions
from dppo_embodied.parsing import (
    MAX_CHARS,
    DoneAction,
    MoveAction,
    NoAnswer,
    PointAction,
    SkillAction,
    action_to_json,
    is_answer,
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

NA = NoAnswer  # expected-type marker in the tables below


def check(got: object, expected: object) -> None:
    if expected is NA:
        assert isinstance(got, NoAnswer), got
        assert not got and got.reason
    elif isinstance(expected, float):
        assert got == pytest.approx(expected), got
    else:
        assert got == expected


# ------------------------------------------------------------------------------------------------ NoAnswer
def test_no_answer_is_falsy_and_typed() -> None:
    na = NoAnswer("why")
    assert not na and not is_answer(na) and na.reason == "why"
    assert is_answer("A") and is_answer(0.0) and is_answer([])  # falsy values are still answers
    with pytest.raises(AttributeError):
        na.reason = "other"  # type: ignore[misc]


def test_action_names_are_reexported_from_parsing() -> None:
    from dppo_embodied import parsing

    assert parsing.parse_action is actions.parse_action and parsing.PointAction is actions.PointAction
    with pytest.raises(AttributeError):
        _ = parsing.no_such_name  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------- strip_think
# The one think/answer normaliser is Pelican's remove_think (first </think>, first <answer> block, else the last
# closed \boxed{} with every "}" dropped); tests/benchmarks/test_pathological.py checks it against the official
# regexes on 20,000 random strings.
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, ""),
        ("", ""),
        ("  B  ", "B"),
        ("<think>maybe B</think> C", "C"),
        ("<think>a</think>x<think>b</think> final", "x<think>b</think> final"),  # the first </think> only
        ("<thought>hmm</thought>\nD", "D"),
        ("<think>..B..</think><answer>C</answer>", "C"),
        ("<answer>A</answer> then <answer> B </answer>", "A"),  # the first answer block
        ("<answer></answer>", ""),
        ("<answer>truncated at the end", "<answer>truncated at the end"),  # an unclosed block is no block
        ("So \\boxed{\\frac{1}{2}} is it", "\\frac{1{2"),  # the official quirk: every "}" dropped
        ("\\boxed{1} and later \\boxed{{2}}", "{2"),
        ("\\boxed{\\text{D}}", "D"),
        ("<think>long reasoning never closed B", "<think>long reasoning never closed B"),
    ],
)
def test_strip_think(text: str | None, expected: str) -> None:
    assert strip_think(text) == expected


def test_the_one_target_builder_and_its_reader() -> None:
    from dppo_embodied.answer_text import split_think, target_text

    assert target_text("B") == "<answer>B</answer>"
    assert target_text("B", " red is left ") == "<think>red is left</think><answer>B</answer>"
    assert target_text("B", "  ") == "<answer>B</answer>"
    assert split_think(target_text("[(0.10, 0.20)]", "the cup")) == ("the cup", "[(0.10, 0.20)]")
    assert split_think("The answer is B.") == (None, "The answer is B.")
    assert split_think("<think>a</think><think>b</think><answer>C</answer>") == ("a", "C")
    for text in ("<think>x</think><answer>B</answer>", "B", "<answer>A</answer><answer>B</answer>"):
        assert split_think(text)[1] == strip_think(text)


# -------------------------------------------------------------------------------------------------- options
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("B", "B"),
        ("b", "B"),
        ("(C)", "C"),
        ("B. red cup", "B"),
        ("B) the red cup on the left", "B"),
        ("The answer is (B).", "B"),
        ("Answer: B", "B"),
        ("answer is b", "B"),
        ("**B**", "B"),
        ("Option B", "B"),
        ("I think it's C because it is closer to the robot.", "C"),
        ("A red cup is on the left. Answer: C", "C"),
        ("A red cup is on the left of the plate.", "A"),  # article A only when nothing better
        ("<think>..B..</think><answer>C</answer>", "C"),
        ("<answer></answer>", NA),
        ("", NA),
        (None, NA),
        ("\\boxed{\\text{D}}", "D"),
        ("The correct option is D, since the bowl is empty.", "D"),
        ("Final answer: (A)", "A"),
        ("The answer is a red cup", NA),
        ("I don't know.", NA),  # the pronoun I is never option I
        ("Looking at the image, I'd pick the left one. So the answer is B.", "B"),
        ("Best option:(D) moving forward", "D"),
        ("After checking each choice, option C matches.", "C"),
        ("The robot should go to B.", "B"),
        ("<answer>The answer is 'a'</answer>", "A"),
        ("Please provide the image.", NA),
        ("E.g. the cup on the U.S. flag", NA),
        ("B\n\nExplanation: A is the left one.", "B"),
        ("Option A is wrong. Option C is right.", "C"),
    ],
)
def test_parse_option(text: str | None, expected: object) -> None:
    check(parse_option(text), expected)


def test_parse_option_restricts_letters_and_matches_option_text() -> None:
    assert isinstance(parse_option("E", num_options=4), NoAnswer)
    assert parse_option("E", num_options=5) == "E"
    assert parse_option("It is the blue bowl.", options=["red cup", "blue bowl", "green box"]) == "B"
    # an option contained in another matched option does not make the match ambiguous
    assert parse_option("the red cup", options=["cup", "red cup"]) == "B"
    assert isinstance(parse_option("red cup or blue bowl", options=["red cup", "blue bowl"]), NoAnswer)
    assert parse_option("(b)", letters="AB") == "B"
    assert isinstance(parse_option("C", letters="AB"), NoAnswer)


# --------------------------------------------------------------------------------------------------- yes/no
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Yes.", "yes"),
        ("No, because the drawer is closed.", "no"),
        ("The answer is yes", "yes"),
        ("true", "yes"),
        ("False", "no"),
        ("**Yes**, the cup fits.", "yes"),
        ("<think>no... wait</think><answer>Yes</answer>", "yes"),
        ("Yes or no", NA),
        ("yes/no", NA),
        ("There is no cup on the table, so yes.", "yes"),
        ("I cannot tell.", NA),
        ("", NA),
        ("Nope", "no"),
        ("Based on the image, the answer: no", "no"),
    ],
)
def test_parse_yes_no(text: str, expected: object) -> None:
    check(parse_yes_no(text), expected)


# -------------------------------------------------------------------------------------------------- numbers
@pytest.mark.parametrize(
    ("text", "unit", "expected"),
    [
        ("3", None, 3.0),
        ("-2.5", None, -2.5),
        ("The room is 1,234 square feet", None, 1234.0),
        ("1.5e3", None, 1500.0),
        ("about 2 \\times 10^{3} mm", None, 2000.0),
        ("1/2", None, 0.5),
        ("<answer>\\frac{1}{2}</answer>", None, 0.5),
        ("\\boxed{0.5}", None, 0.5),
        ("three", None, 3.0),
        ("There are twenty-one chairs.", None, 21.0),
        ("one hundred and five", None, 105.0),
        ("a dozen", None, 12.0),
        ("It is 3 m wide and 4 m long, so the answer is 12", None, 12.0),
        ("The distance is approximately 2.5 meters.", None, 2.5),
        ("Chair 1 is 2 m from chair 2", None, 1.0),  # first number (official VSI/Pelican rule)
        ("<answer></answer>", None, NA),
        ("no idea", None, NA),
        ("0.5 m", "cm", 50.0),
        ("30 mm", "cm", 3.0),
        ("2.4 meters", "m", 2.4),
        ("150 centimeters", "m", 1.5),
        ("20 square meters", "m2", 20.0),
        ("2 m²", "cm2", 20000.0),
        ("45", "cm", 45.0),  # no unit written -> as written
        ("1e309", None, NA),  # non-finite is skipped
        ("−4", None, -4.0),  # unicode minus
    ],
)
def test_parse_number(text: str, unit: str | None, expected: object) -> None:
    check(parse_number(text, unit=unit), expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("3", 3), ("3.0", 3), ("There are three chairs.", 3), ("2.6", 3), ("-1", NA), ("none", 0), ("", NA),
     ("a few", NA)],
)
def test_parse_count(text: str, expected: object) -> None:
    got = parse_count(text)
    check(got, expected)
    if is_answer(got):
        assert isinstance(got, int)


# --------------------------------------------------------------------------------------------------- points
@pytest.mark.parametrize(
    ("text", "size", "convention", "expected"),
    [
        ("(0.43, 0.61)", None, "auto", [(0.43, 0.61)]),
        ("[(0.1,0.2),(0.3,0.4)]", None, "auto", [(0.1, 0.2), (0.3, 0.4)]),
        ("[0.25, 0.75]", None, "auto", [(0.25, 0.75)]),
        ("[[0.1, 0.2], [0.3, 0.4]]", None, "auto", [(0.1, 0.2), (0.3, 0.4)]),
        # Where2Place (benchmarks.md section 4): integers are pixels when the image size is known
        ("[(350, 250)]", (640, 480), "auto", [(350 / 640, 250 / 480)]),
        ("[(350, 250)]", None, "auto", [(0.35, 0.25)]),  # no size: 0-1000 grid
        ("(0, 1)", None, "auto", [(0.0, 1.0)]),
        ('[{"point_2d": [320, 240], "label": "cup"}]', (640, 480), "auto", [(0.5, 0.5)]),
        ('[{"point": [250, 500], "label": "cup"}]', None, "auto", [(0.5, 0.25)]),  # Gemini: y first, 0-1000
        ("[250, 500]", None, "gemini_yx", [(0.5, 0.25)]),
        ('<point x="61.5" y="40.6" alt="cup">cup</point>', None, "auto", [(0.615, 0.406)]),  # Molmo percent
        ('<points x1="10" y1="20" x2="30.5" y2="40">cups</points>', None, "auto", [(0.1, 0.2), (0.305, 0.4)]),
        ('<points coords="500 300">cup</points>', None, "auto", [(0.5, 0.3)]),  # Molmo2, 0-1000
        ('<points coords="1 1 946 029 2 500 300">cups</points>', None, "auto", [(0.946, 0.029), (0.5, 0.3)]),
        ('{"x": 0.4, "y": 0.6}', None, "auto", [(0.4, 0.6)]),
        ("(320, 240)", (640, 480), "pixels", [(0.5, 0.5)]),
        ("(500, 250)", None, "thousand", [(0.5, 0.25)]),
        ("(1.2, 0.5)", None, "auto", [(1.2, 0.5)]),  # out of range is kept; scorers give 0
        ("(nan, 0.5) and (0.2, 0.3)", None, "auto", [(0.2, 0.3)]),
        ("<think>(0.9, 0.9)</think>Answer: [(0.1, 0.1)]", None, "auto", [(0.1, 0.1)]),
        ("The target point: (0.3, 0.7)", None, "auto", [(0.3, 0.7)]),  # only a quoted JSON "point" key is Gemini
        ("The cup is on the left.", None, "auto", NA),
        ("(320, 240)", None, "pixels", NA),
        ("(0.1, 0.2)", None, "bogus", NA),
    ],
)
def test_parse_points(text: str, size: tuple[int, int] | None, convention: str, expected: object) -> None:
    got = parse_points(text, image_size=size, convention=convention)
    if expected is NA:
        assert isinstance(got, NoAnswer)
    else:
        assert isinstance(got, list) and len(got) == len(expected)  # type: ignore[arg-type]
        for (x, y), (ex, ey) in zip(got, expected, strict=True):  # type: ignore[arg-type]
            assert (x, y) == (pytest.approx(ex), pytest.approx(ey))


@pytest.mark.parametrize(
    ("text", "size", "expected"),
    [
        ("[0.1, 0.2, 0.5, 0.6]", None, (0.1, 0.2, 0.5, 0.6)),
        ("(0.5, 0.6, 0.1, 0.2)", None, (0.1, 0.2, 0.5, 0.6)),  # sorted corners
        ('{"bbox_2d": [64, 48, 320, 240]}', (640, 480), (0.1, 0.1, 0.5, 0.5)),
        ('{"bbox_2d": [100, 200, 300, 400]}', None, (0.1, 0.2, 0.3, 0.4)),
        ('[{"box_2d": [100, 200, 300, 400], "label": "cup"}]', None, (0.2, 0.1, 0.4, 0.3)),  # Gemini ymin,xmin,..
        ("<|box_start|>(100,200),(300,400)<|box_end|>", None, (0.1, 0.2, 0.3, 0.4)),
        ("no box here (0.1, 0.2)", None, NA),
    ],
)
def test_parse_bbox(text: str, size: tuple[int, int] | None, expected: object) -> None:
    got = parse_bbox(text, image_size=size)
    if expected is NA:
        assert isinstance(got, NoAnswer)
    else:
        assert got == pytest.approx(expected)


# ------------------------------------------------------------------------------------------------ sequences
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('["pick red", "place in box"]', ["pick red", "place in box"]),
        ("['pick red', 'place in box']", ["pick red", "place in box"]),
        ("1. pick red\n2. place in box", ["pick red", "place in box"]),
        ("Plan:\nStep 1: open the drawer.\nStep 2: put the cup inside.\nThat's it.",
         ["open the drawer", "put the cup inside"]),
        ("- grasp cup\n- lift cup\n- place cup", ["grasp cup", "lift cup", "place cup"]),
        ("1. pick 2. place 3. done", ["pick", "place", "done"]),
        ("pick -> move -> place", ["pick", "move", "place"]),
        ("B, A, C", ["B", "A", "C"]),
        ("BAC", ["B", "A", "C"]),
        ("pick the cup, then place it, and close the lid.", ["pick the cup", "place it", "close the lid"]),
        ("", NA),
    ],
)
def test_parse_sequence(text: str, expected: object) -> None:
    check(parse_sequence(text), expected)


def test_parse_sequence_with_options_and_normalize_step() -> None:
    opts = ["Pick up the cup", "Place the cup", "Open the drawer"]
    assert parse_sequence("C, A, B", options=opts) == ["Open the drawer", "Pick up the cup", "Place the cup"]
    assert parse_sequence("1. open the drawer!\n2. pick up the cup", options=opts) == [opts[2], opts[0]]
    assert normalize_step("  Pick  up, the CUP! ") == "pick up the cup"
    assert normalize_step("place_cup") == "place cup"


# ------------------------------------------------------------------------------------------ action envelope
@pytest.mark.parametrize(
    ("text", "kwargs", "expected"),
    [
        ('{"thought": "go", "action": {"type": "point", "x": 0.43, "y": 0.61, "then": "grasp"}}', {},
         PointAction(0.43, 0.61, "grasp")),
        ('{"type": "point", "x": "0.2", "y": "0.3"}', {}, PointAction(0.2, 0.3)),
        ('{"action": {"type": "point", "point": [0.2, 0.3], "then": "move to"}}', {}, PointAction(0.2, 0.3)),
        ('{"action": {"type": "point", "x": 320, "y": 240}}', {"image_size": (640, 480)}, PointAction(0.5, 0.5)),
        ('{"action": {"type": "point", "x": 500, "y": 250}}', {}, PointAction(0.5, 0.25)),
        ('[{"point": [250, 500], "label": "cup"}]', {}, PointAction(0.5, 0.25)),  # Gemini y-first
        ('<point x="50" y="25" alt="cup">cup</point>', {}, PointAction(0.5, 0.25)),  # Molmo percent
        ("```json\n{'action': {'type': 'move', 'dx_cm': 2, 'gripper': 'closed',}}\n```", {},
         MoveAction(2.0, 0.0, 0.0, "close")),
        ('Sure! {"action": {"type": "move", "dz": -1.5, "gripper": None}} Moving down.', {},
         MoveAction(0.0, 0.0, -1.5, None)),
        ('{"action": {"type": "move", "dx_cm": 1, "dy_cm": -1, "gripper": 1}}', {},
         MoveAction(1.0, -1.0, 0.0, "open")),
        ('{"action": {"type": "move", "gripper": -1}}', {}, MoveAction(gripper="close")),
        ('{"action": {"type": "move", "gripper": "opened"}}', {}, MoveAction(gripper="open")),
        ('{"action": {"type": "move", "gripper": True}}', {}, MoveAction(gripper="open")),
        ('{"action": {"type": "skill", "name": "Pick", "object": "red_block"}}', {}, SkillAction("pick", "red_block")),
        ('{"action": {"type": "skill", "name": "place", "object": "cup", "target": "tray"}}',
         {"skills": ["pick", "place"]}, SkillAction("place", "cup", "tray")),
        ('{"action": {"type": "pick", "object": "cup"}}', {"skills": ["pick"]}, SkillAction("pick", "cup")),
        ('{"action": {"type": "done"}}', {}, DoneAction()),
        ('{"action": "done"}', {}, DoneAction()),
        ("DONE", {}, DoneAction()),
        ("Done.", {}, DoneAction()),
        ('<think>the cup { is grasped</think><answer>{"action": {"type": "done"}}</answer>', {}, DoneAction()),
        ('[{"type": "point", "x": 0.1, "y": 0.2}, {"type": "done"}]', {}, PointAction(0.1, 0.2)),
        ('{"actions": [{"type": "done"}]}', {}, DoneAction()),
        ('{"thought": "I see {a cup}"} then {"action": {"type": "done"}}', {}, DoneAction()),
    ],
)
def test_parse_action(text: str, kwargs: dict, expected: object) -> None:
    got = parse_action(text, **kwargs)
    if isinstance(expected, PointAction):
        assert isinstance(got, PointAction) and got.then == expected.then
        assert (got.x, got.y) == (pytest.approx(expected.x), pytest.approx(expected.y))
    else:
        assert got == expected


@pytest.mark.parametrize(
    ("text", "kwargs", "reason_part"),
    [
        ("", {}, "empty response"),
        (None, {}, "empty response"),
        ("I will move the arm to the left.", {}, "no JSON action"),
        ('{"action": {"type": "jump"}}', {}, "valid types: point, move, skill, done"),
        ('{"action": {"type": "point", "x": 1e309, "y": 0.5}}', {}, "finite"),
        ('{"action": {"type": "point", "x": NaN, "y": 0.5}}', {}, "finite"),
        ('{"action": {"type": "move", "dx_cm": Infinity}}', {}, "finite"),
        ('{"action": {"type": "move", "dx_cm": "left"}}', {}, "dx_cm"),
        ('{"action": {"type": "skill", "name": "fly"}}', {"skills": ["pick", "place"]},
         "unknown skill 'fly'; valid: pick, place"),
        ('{"action": {"type": "skill"}}', {}, "name"),
        ('{"action": {"type": "point", "x": 0.5}}', {}, "x"),
        ('{"action": {"type": "point", "x": 0.5, "y": 0.5, "then": "move_to|push|grasp"}}', {}, "then"),
        ('{"action": {"type": "point", "x": -5, "y": 0.5}}', {}, "outside the image"),
        ('{"action": {"type": "move", "gripper": "sideways"}}', {}, "gripper"),
        ('{"action": {"type": "point", "x": 0.5, "y": ', {}, "could not read"),
        ('{"action": []}', {}, "empty"),
    ],
)
def test_parse_action_invalid_reasons(text: str | None, kwargs: dict, reason_part: str) -> None:
    got = parse_action(text, **kwargs)
    assert isinstance(got, NoAnswer), got
    assert reason_part in got.reason


def test_parse_actions_list() -> None:
    got = parse_actions('[{"type": "point", "x": 500, "y": 250}, {"type": "done"}]')
    assert got == [PointAction(0.5, 0.25), DoneAction()]
    bad = parse_actions('[{"type": "done"}, {"type": "jump"}]')
    assert isinstance(bad, NoAnswer) and bad.reason.startswith("action 2:")
    assert parse_action('[{"type": "done"}, {"type": "jump"}]') == DoneAction()  # first only


@pytest.mark.parametrize(
    "action",
    [
        PointAction(0.43, 0.61, "grasp"),
        PointAction(0.0, 1.0),
        PointAction(0.1234567890123, 0.5, "place"),
        MoveAction(2.0, -1.0, 0.0, "open"),
        MoveAction(dz_cm=-0.25),
        MoveAction(1, 2, 3, "close"),
        SkillAction("pick", "red_block"),
        SkillAction("place", "cup", "tray"),
        SkillAction("wipe"),
        DoneAction(),
    ],
)
def test_action_envelope_round_trip(action: object) -> None:
    s = action_to_json(action)  # type: ignore[arg-type]
    assert s.startswith('{"action": {"type": ')
    back = parse_action(s)
    assert back == action or (isinstance(action, MoveAction) and back == MoveAction(1.0, 2.0, 3.0, "close"))
    assert action_to_json(back) == s  # type: ignore[arg-type]
    assert parse_action(f"<think>ok</think>Here you go:\n```json\n{s}\n```") == back


def test_action_to_json_rejects_non_actions() -> None:
    with pytest.raises(TypeError):
        action_to_json(NoAnswer("x"))  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ hostile input and speed
FORMAT_ONLY = "<think></think><answer></answer>"


@pytest.mark.parametrize(
    "fn",
    [parse_option, parse_yes_no, parse_number, parse_count, parse_points, parse_bbox, parse_sequence, parse_action,
     parse_actions],
)
def test_format_only_and_non_string_inputs_give_no_answer(fn: Callable[..., object]) -> None:
    for bad in (FORMAT_ONLY, "", None, "   \n\t", "<think>B</think>"):
        got = fn(bad)
        assert isinstance(got, NoAnswer) and got.reason, (bad, got)
    for odd in (12345, b"\xff\xfe", ["B"], object()):  # not text at all: coerced, never raises
        fn(odd)


@pytest.mark.parametrize(
    "text",
    [
        "word " * 40_000 + "The answer is (B). 3 m. [(0.1, 0.2)] " + '{"action": {"type": "done"}}',
        "(" * 100_000 + "1" * 100_000,
        "answer" + " " * 200_000 + "!",
        "{" * 100_000 + '"' * 100_000,
        "-" * 200_000,
        "1," * 100_000,
    ],
)
def test_over_long_output_returns_quickly(text: str) -> None:
    assert len(text) >= 200_000
    for fn in (strip_think, parse_option, parse_yes_no, parse_number, parse_count, parse_points, parse_bbox,
               parse_sequence, parse_action, normalize_step):
        t0 = time.perf_counter()
        fn(text)
        assert time.perf_counter() - t0 < 1.0, fn.__name__


def test_long_output_keeps_the_tail() -> None:
    text = "A" * (MAX_CHARS * 3) + " The answer is (C)."
    assert parse_option(text) == "C"
    assert parse_action("x" * 100_000 + '{"action": {"type": "done"}}') == DoneAction()
