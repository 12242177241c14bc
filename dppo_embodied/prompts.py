"""Prompts of the text-action envelope, shared by the simulated envs and the robot bridge (torch-free, stdlib).

The system prompt is static (robot, coordinates, action schema with one example per type, validity rules) so a
server's prefix cache reuses it across steps; :func:`build_step_prompt` puts the remaining static text first and
the per-step parts (instruction, history, feedback) last. Images go after this text in the user message.

Conventions (identical to :mod:`dppo_embodied.actions`): image points are normalized ``x, y`` in [0, 1], origin
top-left, x right, y down. Relative moves are centimetres in the robot's world frame: +x right and +y away from
the camera as seen in the image, +z up.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["ACTION_EXAMPLES", "DEFAULT_SKILLS", "SYSTEM_PROMPT", "build_step_prompt", "system_prompt"]

#: Skills the tabletop envs and the twin understand.
DEFAULT_SKILLS: tuple[str, ...] = ("pick", "place", "push", "home")

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
        history: previous actions (and their feedback), oldest first; only the last 5 are shown.
        skills: skill names the robot offers this episode (listed after the static text).

    Returns:
        The prompt text.
    """
    parts = ["Reply with one JSON action."]
    if skills:
        parts.append("Available skills: " + ", ".join(skills) + ".")
    parts.append(f"Task: {instruction.strip()}")
    hist = [h.strip() for h in history if h and h.strip()][-5:]
    if hist:
        parts.append("Previous actions:\n" + "\n".join(f"- {h}" for h in hist))
    parts.append(f"Feedback: {feedback.strip()}" if feedback and feedback.strip() else "Feedback: none yet.")
    parts.append("Current image:")
    return "\n".join(parts)
