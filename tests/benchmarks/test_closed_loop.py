"""Closed-loop suites in the harness: tabletop episodes driven through a backend, success rate over seeds."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from benchmarks.backends.fake import FakeBackend
from benchmarks.runner import RunSettings, run
from benchmarks.task import TaskManager
from dppo_embodied.generation import ChatRequest
from dppo_embodied.prompts import COMPACT_SYSTEM_PROMPT, write_prompt_style

pytestmark = pytest.mark.mujoco


def oracle(r: ChatRequest) -> str:
    """Reads "Pick up the <colour> <shape>." from the step prompt and calls the pick skill."""
    conv = r.conversation
    m = re.search(r"Task: Pick up the (\w+) (\w+)\.", conv.text)
    assert m and conv.system and len(conv.images) == 1 and not conv.media_first  # text first, the image last
    return json.dumps({"action": {"type": "skill", "name": "pick", "object": f"{m.group(1)}_{m.group(2)}"}})


def test_tabletop_pick_success_rate_and_resume(tmp_path: Path) -> None:
    pytest.importorskip("mujoco")
    sels = TaskManager().resolve("tabletop_closed_loop_pick")
    out = tmp_path / "out"
    res = run(sels, FakeBackend(responder=oracle), RunSettings(out=out, progress=False, limit=2))
    entry = res["tabletop_closed_loop"]
    assert entry["n"] == 2 and entry["overall"] == 100.0 and entry["metric"] == "success_rate"
    assert entry["subtasks"] == {"tabletop_closed_loop_pick": 100.0}
    rows = [json.loads(x) for x in (out / "tabletop_closed_loop" / "samples.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["pick/seed1000", "pick/seed1001"]
    assert json.loads(rows[0]["response"])["success"] is True and rows[0]["prompt"].startswith("Reply with one")
    calls: list[str] = []
    again = run(sels, FakeBackend(responder=lambda r: calls.append(r.id) or "DONE"),
                RunSettings(out=out, progress=False, limit=2))
    assert calls == [] and again["tabletop_closed_loop"]["overall"] == 100.0  # finished episodes are kept


def test_giving_up_scores_zero(tmp_path: Path) -> None:
    pytest.importorskip("mujoco")
    done = json.dumps({"action": {"type": "done"}})
    res = run(TaskManager().resolve("tabletop_closed_loop_pick"), FakeBackend(done),
              RunSettings(out=tmp_path / "out", progress=False, limit=1))
    assert res["tabletop_closed_loop"]["overall"] == 0.0


def test_pusht_runs_or_is_skipped_with_a_reason(tmp_path: Path) -> None:
    res = run(TaskManager().resolve("pusht"), FakeBackend(json.dumps({"action": {"type": "done"}})),
              RunSettings(out=tmp_path / "out", progress=False, limit=1))
    entry = res["pusht"]
    try:
        import gym_pusht  # noqa: F401
    except ImportError:
        assert "gym-pusht" in json.dumps(entry["details"]["skipped"])
    else:
        assert entry["n"] == 1 and entry["overall"] == 0.0


def test_the_prompt_style_recorded_with_the_checkpoint_is_used(tmp_path: Path) -> None:
    pytest.importorskip("mujoco")
    systems: list[str | None] = []

    def record(r: ChatRequest) -> str:
        systems.append(r.conversation.system)
        return json.dumps({"action": {"type": "done"}})

    sels = TaskManager().resolve("tabletop_closed_loop_pick")
    model = tmp_path / "ckpt"
    model.mkdir()
    run(sels, FakeBackend(str(model), responder=record), RunSettings(out=tmp_path / "a", progress=False, limit=1))
    write_prompt_style(model, "compact")
    run(sels, FakeBackend(str(model), responder=record), RunSettings(out=tmp_path / "b", progress=False, limit=1))
    run(sels, FakeBackend("served-name", responder=record),
        RunSettings(out=tmp_path / "c", progress=False, limit=1, step_prompt="compact"))
    assert systems[0] is not None and "JSON" in systems[0]  # nothing recorded: full
    assert systems[1:] == [COMPACT_SYSTEM_PROMPT, COMPACT_SYSTEM_PROMPT]
