"""Unit tests for the action envelope (dppo_embodied.actions via dppo_embodied.parsing): parse_action(s) on
realistic and adversarial model outputs, their refusal reasons, and the JSON round trip."""

from __future__ import annotations

import pytest

from dppo_embodied.parsing import (
    DoneAction,
    MoveAction,
    NoAnswer,
    PointAction,
    SkillAction,
    action_to_json,
    parse_action,
    parse_actions,
)


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
