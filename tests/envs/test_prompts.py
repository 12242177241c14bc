"""The shared text-action prompts."""

from __future__ import annotations

from dppo_embodied.actions import DoneAction, MoveAction, PointAction, SkillAction, parse_action
from dppo_embodied.prompts import ACTION_EXAMPLES, DEFAULT_SKILLS, SYSTEM_PROMPT, build_step_prompt, system_prompt


def test_examples_parse_to_their_types() -> None:
    kinds = {"point": PointAction, "move": MoveAction, "skill": SkillAction, "done": DoneAction}
    for name, text in ACTION_EXAMPLES.items():
        assert isinstance(parse_action(text, skills=DEFAULT_SKILLS), kinds[name])
        assert text in SYSTEM_PROMPT


def test_system_prompt_states_conventions() -> None:
    assert "origin at the top-left" in SYSTEM_PROMPT and "[0, 1]" in SYSTEM_PROMPT
    assert "pick (object)" in system_prompt()
    assert "skill" not in system_prompt(()).split("Actions:")[1].split("Rules")[0].replace("skills", "")


def test_step_prompt_puts_static_text_first() -> None:
    a = build_step_prompt("Pick up the red block.", skills=["pick"])
    b = build_step_prompt("Pick up the red block.", feedback="Last action is invalid: x", skills=["pick"],
                          history=[f"a{i}" for i in range(9)])
    prefix = "Reply with one JSON action.\nAvailable skills: pick.\nTask: Pick up the red block."
    assert a.startswith(prefix) and b.startswith(prefix)
    assert "Feedback: none yet." in a and "Feedback: Last action is invalid: x" in b
    assert "- a8" in b and "- a3" not in b  # only the last 5 history items
    assert b.endswith("Current image:")
