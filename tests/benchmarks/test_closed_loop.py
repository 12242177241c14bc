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


def test_episode_videos_of_the_first_seeds_are_saved_recorded_and_shown(tmp_path: Path) -> None:
    pytest.importorskip("mujoco")
    pytest.importorskip("av")
    from benchmarks.report import write_report
    from dppo_embodied.media import VideoStream

    out = tmp_path / "out"
    sels = TaskManager().resolve("tabletop_closed_loop_pick")
    run(sels, FakeBackend(responder=oracle), RunSettings(out=out, progress=False, limit=3, save_videos=2))
    task_dir = out / "tabletop_closed_loop"
    rows = [json.loads(x) for x in (task_dir / "samples.jsonl").read_text().splitlines()]
    assert [r.get("video") for r in rows] == ["videos/pick/seed1000.mp4", "videos/pick/seed1001.mp4", None]
    assert sorted(p.name for p in (task_dir / "videos" / "pick").iterdir()) == ["seed1000.mp4", "seed1001.mp4"]
    stream = VideoStream(task_dir / rows[0]["video"])
    n_frames = 0
    while stream.read() is not None:
        n_frames += 1
    stream.close()
    assert n_frames == json.loads(rows[0]["response"])["steps"] + 1  # one frame per decision, then the last scene

    page = write_report(out)["html"].read_text(encoding="utf-8")
    data = json.loads(re.search(r'id="report-data">(.*?)</script>', page, re.S).group(1))
    assert [s["video"] for s in data["samples"]] == ["tabletop_closed_loop/videos/pick/seed1000.mp4",
                                                     "tabletop_closed_loop/videos/pick/seed1001.mp4", None]
    assert "createElement" in page and "'video'" in page  # the rows build a <video> for a sample that has one
    (task_dir / rows[1]["video"]).unlink()  # a run folder copied without its videos: the row falls back
    data = json.loads(re.search(r'id="report-data">(.*?)</script>', write_report(out)["html"].read_text(
        encoding="utf-8"), re.S).group(1))
    assert [s["video"] for s in data["samples"]][:2] == ["tabletop_closed_loop/videos/pick/seed1000.mp4", None]


def test_no_videos_unless_asked(tmp_path: Path) -> None:
    pytest.importorskip("mujoco")
    out = tmp_path / "out"
    run(TaskManager().resolve("tabletop_closed_loop_pick"), FakeBackend(responder=oracle),
        RunSettings(out=out, progress=False, limit=1))
    rows = [json.loads(x) for x in (out / "tabletop_closed_loop" / "samples.jsonl").read_text().splitlines()]
    assert "video" not in rows[0] and not (out / "tabletop_closed_loop" / "videos").exists()


@pytest.mark.slow
def test_report_page_plays_the_episode_video_in_chromium(tmp_path: Path) -> None:
    pytest.importorskip("mujoco")
    pytest.importorskip("av")
    from benchmarks.report import write_report
    from tests.benchmarks.test_report_html import CHROMIUM, _chromium_dom

    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed at /usr/bin/chromium (apt-get install -y chromium)")
    out = tmp_path / "out"
    run(TaskManager().resolve("tabletop_closed_loop_pick"), FakeBackend(responder=oracle),
        RunSettings(out=out, progress=False, limit=2, save_videos=1))
    dom, log = _chromium_dom(write_report(out)["html"], tmp_path)
    assert ":CONSOLE" not in log and 'data-ready="1"' in dom
    videos = re.findall(r'<video src="([^"]+)"', dom)
    assert videos == ["tabletop_closed_loop/videos/pick/seed1000.mp4"] and (out / videos[0]).is_file()


def test_save_videos_flag_of_dppo_eval_run(tmp_path: Path) -> None:
    pytest.importorskip("mujoco")
    pytest.importorskip("av")
    from benchmarks.cli import main
    from dppo_embodied.errors import ConfigError

    out = tmp_path / "out"
    # the fake backend answers its model name, "DONE", at every step: a failed episode is filmed too
    assert main(["run", "--model", "DONE", "--backend", "fake", "--tasks", "tabletop_closed_loop_pick", "--limit",
                 "2", "--save-videos", "1", "--out", str(out), "--no-progress"]) == 0
    assert [p.name for p in (out / "tabletop_closed_loop" / "videos" / "pick").iterdir()] == ["seed1000.mp4"]
    with pytest.raises(ConfigError, match="--save-videos must be >= 0"):
        RunSettings(out=out, save_videos=-1)
