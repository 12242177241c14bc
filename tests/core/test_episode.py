"""The closed-loop step contract of the core: observation -> render_step -> Conversation, and the episode runner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dppo_embodied.conversation import Conversation
from dppo_embodied.episode import (
    MAX_QUOTED,
    StepObservation,
    history_entry,
    play,
    render_step,
    run_episode,
    start_episode,
)
from dppo_embodied.errors import ConfigError, EnvError
from dppo_embodied.prompts import (
    COMPACT_SYSTEM_PROMPT,
    HISTORY_STEPS,
    STEP_PROMPT_FILE,
    read_prompt_style,
    system_prompt,
    write_prompt_style,
)


class CountingEnv:
    """A text env over a counter: ``"+"`` adds one (success at 3), anything else is invalid; horizon 5."""

    def __init__(self) -> None:
        self.resets: list[int | None] = []

    def _obs(self) -> dict[str, Any]:
        return {"image": np.zeros((8, 6, 3), np.uint8), "instruction": "Count to 3.", "feedback": self.feedback,
                "history": tuple(self.history[-HISTORY_STEPS:]), "skills": ("pick",)}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, Any], dict[str, Any]]:
        self.resets.append(seed)
        self.n, self.steps, self.invalid, self.feedback, self.history = 0, 0, 0, "", []
        return self._obs(), {}

    def step(self, action: str) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        self.steps += 1
        ok = action == "+"
        self.n += ok
        self.invalid += not ok
        self.feedback = "Last action succeeded: counted" if ok else "Last action is invalid: say +"
        self.history.append(history_entry("+" if ok else None, action, self.feedback))
        info = {"is_success": self.n >= 3, "progress": self.n / 3, "invalid_count": self.invalid,
                "command": "+" if ok else None, "parse_ok": ok}
        return self._obs(), float(ok), self.n >= 3, self.steps >= 5, info


def test_render_step_puts_static_text_first_and_the_images_last() -> None:
    img = np.zeros((8, 6, 3), np.uint8)
    obs = StepObservation((img,), "Pick up the red block.", "Last action is invalid: x", ("a -> b",), ("pick",))
    full, compact = render_step(obs), render_step(obs, "compact")
    assert full.system == system_prompt(("pick",)) and compact.system == COMPACT_SYSTEM_PROMPT
    assert full.text == compact.text and not full.media_first
    assert full.text.startswith("Reply with one JSON action.\nAvailable skills: pick.\nTask: Pick up the red block.")
    assert "- a -> b" in full.text and full.text.endswith("Current image:")
    assert full.signature()[-1]["content"] == [{"type": "text", "text": full.text},
                                               {"type": "image", "image": "8x6x3"}]
    no_skills = render_step(StepObservation((img,), "Push the T."))
    assert "Available skills" not in no_skills.text and "3. skill" not in (no_skills.system or "")
    with pytest.raises(ConfigError, match="compact"):
        render_step(obs, "tiny")  # type: ignore[arg-type]


def test_history_entry_is_one_printable_line() -> None:
    assert history_entry('{"action": {"type": "done"}}', "whatever", "ok") == '{"action": {"type": "done"}} -> ok'
    assert history_entry(None, "I would\n  rather\tnot \u2603", "Last action is invalid: x") \
        == "I would rather not ? -> Last action is invalid: x"
    assert history_entry(None, "", "f") == "(empty) -> f" and history_entry(None, None, "f") == "(empty) -> f"
    long = history_entry(None, "y" * 5000, "f")
    assert long == "y" * MAX_QUOTED + " -> f"


def test_from_env_needs_an_image() -> None:
    with pytest.raises(EnvError, match="image"):
        StepObservation.from_env({"instruction": "x"})


def test_prompt_style_is_recorded_beside_the_weights(tmp_path: Path) -> None:
    assert read_prompt_style(tmp_path) == "full" and read_prompt_style(None) == "full"
    assert read_prompt_style("served-model-name") == "full" and read_prompt_style("x" * 5000) == "full"
    write_prompt_style(tmp_path, "compact")
    assert json.loads((tmp_path / STEP_PROMPT_FILE).read_text()) == {"style": "compact"}
    assert read_prompt_style(str(tmp_path)) == "compact"
    (tmp_path / STEP_PROMPT_FILE).write_text('{"style": "huge"}')
    with pytest.raises(ConfigError, match="huge"):
        read_prompt_style(tmp_path)
    (tmp_path / STEP_PROMPT_FILE).write_text("{")
    with pytest.raises(ConfigError, match=STEP_PROMPT_FILE):
        read_prompt_style(tmp_path)


def test_play_is_lockstep_and_restores_prefixes() -> None:
    calls: list[list[Conversation]] = []

    def policy(convs: Any) -> list[str]:
        calls.append(list(convs))
        return ["+"] * len(convs)

    fresh, restored = start_episode(CountingEnv(), 7), start_episode(CountingEnv(), 8, prefix=["?", "+"])
    assert restored.steps == 2 and restored.observation.history == ("? -> Last action is invalid: say +",
                                                                    "+ -> Last action succeeded: counted")
    play([fresh, restored], policy)
    assert fresh.success and restored.success and fresh.steps == 3 and restored.steps == 4
    assert [len(c) for c in calls] == [2, 2, 1]  # one batched call per decision; finished episodes drop out
    assert fresh.result().transcript[-1]["is_success"] and fresh.result().seed == 7
    with pytest.raises(EnvError, match="over"):
        fresh.step("+")
    with pytest.raises(EnvError, match="replies"):
        play([start_episode(CountingEnv(), 0)], lambda convs: [])


def test_run_episode_caps_and_truncates() -> None:
    env = CountingEnv()
    capped = run_episode(env, lambda conv: "?", seed=1, max_steps=2)
    assert capped.steps == 2 and capped.invalid == 2 and not capped.terminated and env.resets == [1]
    truncated = run_episode(env, lambda conv: "?", seed=2)
    assert truncated.steps == 5 and not truncated.success  # the env's horizon
    with pytest.raises(EnvError, match="max_steps"):
        run_episode(env, lambda conv: "+", seed=0, max_steps=0)
