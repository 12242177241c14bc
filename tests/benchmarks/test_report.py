"""`dppo eval report`: capability table over the 9 dimensions, radar PNG, weakest subtasks, diff of two runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from benchmarks.backends.fake import FakeBackend
from benchmarks.cli import main
from benchmarks.runner import RunSettings, run
from benchmarks.task import TaskManager
from dppo_embodied.errors import DataError
from tests.benchmarks import fixtures as fx


@pytest.fixture
def runs(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "data"
    fx.make_mvbench(data / "mvbench")
    fx.make_blink(data / "blink")
    sels = TaskManager().resolve("mvbench_action_sequence,mvbench_action_count,blink_counting,blink_jigsaw")
    a, b = tmp_path / "run_a", tmp_path / "run_b"
    run(sels, FakeBackend("A"), RunSettings(out=a, data_root=data, progress=False, frames=1))
    run(sels, FakeBackend("B"), RunSettings(out=b, data_root=data, progress=False, frames=1))
    return a, b


def test_report_with_compare(runs: tuple[Path, Path], capsys: pytest.CaptureFixture) -> None:
    a, b = runs
    assert main(["report", str(a), "--compare", str(b), "--top", "3"]) == 0
    md = (a / "report.md").read_text()
    assert "## Capabilities (9 dimensions)" in md and md.count("\n| ") >= 9
    assert "## Weakest subtasks" in md and "## Diff: run_a minus run_b" in md
    rep = json.loads((a / "report.json").read_text())
    assert len(rep["capabilities"]) == 9 and len(rep["weakest"]) == 3
    assert rep["weakest"][0][1] <= rep["weakest"][-1][1]
    d = rep["diff"]["tasks"]["blink"]
    # A answers "A" everywhere: counting 2/3 vs 1/3 for "B"; jigsaw 0 vs 1 -> macro 33.3 vs 66.7
    assert d["delta"] == pytest.approx((200 / 3 + 0) / 2 - (100 / 3 + 100) / 2)
    assert d["improved"] == 2 and d["regressed"] == 2
    with Image.open(a / "radar.png") as im:
        assert im.size[0] > 300
    out = capsys.readouterr().out
    assert "radar:" in out and f"html: {a / 'report.html'}" in out and (a / "report.html").is_file()
    # capabilities no task here measures are gaps: "not evaluated", not 0
    assert any(rep["capabilities"][s]["score"] is None for s in rep["capabilities"])
    assert "| not evaluated |" in md


def test_report_needs_results(tmp_path: Path) -> None:
    from benchmarks.report import write_report

    with pytest.raises(DataError, match=r"results\.json"):
        write_report(tmp_path)
