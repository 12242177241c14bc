"""Prompts of the text-action envelope, shared by the simulated envs and the robot bridge (torch-free, stdlib).

The system prompt is static (robot, coordinates, action schema with one example per type, validity rules) so a
server's prefix cache reuses it across steps; :func:`build_step_prompt` puts the remaining static text first and
the per-step parts (instruction, history, feedback) last. Images go after this text in the user message
(:func:`dppo_embodied.episode.render_step` assembles the whole step).

Prompt styles (:data:`PROMPT_STYLES`): ``full`` sends :func:`system_prompt` (~500 tokens: the action schema with
examples; for real VLMs), ``compact`` sends :data:`COMPACT_SYSTEM_PROMPT` (a tiny model that learns the envelope
from demonstrations). The user text is the same in both. A policy must be prompted the way it was trained, so the
style is a property of the *checkpoint*: training records it beside the weights (:func:`write_prompt_style`) and
every path that prompts a checkpoint reads it (:func:`read_prompt_style`; ``full`` when nothing is recorded).

Conventions (identical to :mod:`dppo_embodied.actions`): image points are normalized ``x, y`` in [0, 1], origin
top-left, x right, y down. Relative moves are centimetres in the robot's world frame: +x right and +y away from
the camera as seen in the image, +z up.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, cast

from dppo_embodied.errors import ConfigError

__all__ = ["ACTION_EXAMPLES", "COMPACT_SYSTEM_PROMPT", "DEFAULT_SKILLS", "HISTORY_STEPS", "PROMPT_STYLES",
           "STEP_PROMPT_FILE", "SYSTEM_PROMPT", "PromptStyle", "build_step_prompt", "check_prompt_style",
           "read_prompt_style", "step_system_prompt", "system_prompt", "write_prompt_style"]

#: Skills the tabletop envs and the twin understand.
DEFAULT_SKILLS: tuple[str, ...] = ("pick", "place", "push", "home")
#: How many previous actions (with their feedback) a step prompt shows.
HISTORY_STEPS = 5

PromptStyle = Literal["full", "compact"]
#: The step prompt styles: the system prompt a checkpoint was trained with.
PROMPT_STYLES: tuple[PromptStyle, ...] = ("full", "compact")
#: The system prompt of the ``compact`` style.
COMPACT_SYSTEM_PROMPT = "You are a robot."
#: The file beside a checkpoint's weights that records its prompt style (``{"style": "compact"}``).
STEP_PROMPT_FILE = "dppo_step_prompt.json"

#: One canonical example per action type (each parses with :func:`dppo_embodied.actions.parse_action`).
ACTION_EXAMPLES: dict[str, str] = {
    "point": '{"action": {"type": "point", "x": 0.43, "y": 0.61, "then": "grasp"}}',
    "move": '{"action": {"type": "move", "dx_cm": 2.0, "dy_cm": -1.0, "dz_cm": 0.0, "gripper": "open"}}',
    "skill": '{"action": {"type": "skill", "name": "pick", "object": "red_block"}}',
    "done": '{"action": {"type": "done"}}',
}

SYSTEM_PROMPT = f"""You control a robot arm with a two-finger gripper above a table, seen by a camera.
Each turn you get the task, feedback about your last action and the current camera image.
Reply with exactly one action as one JSON object, optionally with a short "thought".

Coordinates: image points are normalized x, y in [0, 1] with the origin at the top-left corner of the image,
x to the right and y downwards. Relative moves are in centimetres: dx_cm to the right, dy_cm away from the
camera, dz_cm up.

Actions:
1. point: go to the table or object seen at image point (x, y), then do "then":
   "move_to" (hover above it), "grasp" (pick up the object there), "place" (put the held object down there),
   "push" (lower the gripper where it is and slide it along the table to the point).
   {ACTION_EXAMPLES["point"]}
2. move: move the gripper by a few centimetres (at most 10 per axis) and optionally open or close it.
   {ACTION_EXAMPLES["move"]}
3. skill: run a named skill on an object (objects are named colour_shape, e.g. red_block, blue_ball).
   {ACTION_EXAMPLES["skill"]}
4. done: declare the task finished.
   {ACTION_EXAMPLES["done"]}

Rules: one action per reply; points must lie on the table or an object in the image; you can hold one object
at a time; an invalid action is not executed and the feedback says why; too many invalid actions end the
episode."""


def system_prompt(skills: Sequence[str] = DEFAULT_SKILLS) -> str:
    """The static system prompt, listing the available skills (object and target fields per skill)."""
    if not skills:
        return SYSTEM_PROMPT.replace(
            "3. skill: run a named skill on an object (objects are named colour_shape, e.g. red_block, blue_ball).\n"
            f"   {ACTION_EXAMPLES['skill']}\n", "")
    return SYSTEM_PROMPT + "\nSkills: " + ", ".join(_SKILL_HELP.get(s, s) for s in skills) + "."


_SKILL_HELP = {
    "pick": 'pick (object)',
    "place": 'place (target: an object name, "target" for the target disc, or "table")',
    "push": 'push (object; target: "left", "right", "away", "toward" or "target")',
    "home": "home (move back to the rest pose)",
}


def build_step_prompt(instruction: str, feedback: str = "", history: Sequence[str] = (),
                      skills: Sequence[str] = ()) -> str:
    """The user text of one decision step (static parts first; the image follows this text).

    Args:
        instruction: the task, e.g. ``"Pick up the red block."``.
        feedback: what happened after the last action (empty on the first step).
        history: previous actions (and their feedback), oldest first; only the last :data:`HISTORY_STEPS` are
            shown.
        skills: skill names the robot offers this episode (listed after the static text).

    Returns:
        The prompt text.
    """
    parts = ["Reply with one JSON action."]
    if skills:
        parts.append("Available skills: " + ", ".join(skills) + ".")
    parts.append(f"Task: {instruction.strip()}")
    hist = [h.strip() for h in history if h and h.strip()][-HISTORY_STEPS:]
    if hist:
        parts.append("Previous actions:\n" + "\n".join(f"- {h}" for h in hist))
    parts.append(f"Feedback: {feedback.strip()}" if feedback and feedback.strip() else "Feedback: none yet.")
    parts.append("Current image:")
    return "\n".join(parts)


def check_prompt_style(style: str) -> PromptStyle:
    """``style`` when it is one of :data:`PROMPT_STYLES`.

    Raises:
        ConfigError: any other value, naming the valid ones.
    """
    if style not in PROMPT_STYLES:
        raise ConfigError(f"unknown step prompt style {style!r}; valid: {', '.join(PROMPT_STYLES)}")
    return cast(PromptStyle, style)


def step_system_prompt(style: PromptStyle, skills: Sequence[str] = DEFAULT_SKILLS) -> str:
    """The system prompt of a closed-loop step in ``style`` (``full``: :func:`system_prompt` listing ``skills``)."""
    return system_prompt(skills) if check_prompt_style(style) == "full" else COMPACT_SYSTEM_PROMPT


def write_prompt_style(model_dir: str | os.PathLike[str], style: PromptStyle) -> Path:
    """Record the step prompt style a checkpoint is trained with, as :data:`STEP_PROMPT_FILE` in its folder.

    Write it into the folder before the folder is committed (the checkpoint writers commit atomically).

    Returns:
        The file written.
    """
    path = Path(model_dir) / STEP_PROMPT_FILE
    path.write_text(json.dumps({"style": check_prompt_style(style)}) + "\n", encoding="utf-8")
    return path


def read_prompt_style(model: str | os.PathLike[str] | None) -> PromptStyle:
    """The step prompt style recorded with a checkpoint; ``full`` when ``model`` is not a folder with a record
    (a served model name, a hub checkpoint, a model not trained here).

    Raises:
        ConfigError: the record exists but is unreadable or names an unknown style (re-save it with
            :func:`write_prompt_style`).
    """
    if not model:
        return "full"
    path = Path(model) / STEP_PROMPT_FILE
    try:
        if not path.is_file():
            return "full"
    except (OSError, ValueError):  # not a path at all (a long served name, a NUL byte)
        return "full"
    try:
        style = json.loads(path.read_text(encoding="utf-8"))["style"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"cannot read the step prompt style in {path}: {e}; it must hold "
                          f'{{"style": "full"}} or {{"style": "compact"}}') from e
    return check_prompt_style(str(style))
