"""``report.html``: one self-contained page (no server, no CDN) with the radar (gaps for capabilities never
evaluated), task and subtask tables with sample counts, and a per-sample browser with failed/compare filters; the
slow test opens it in a real headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from benchmarks.backends.fake import FakeBackend
from benchmarks.cli import main
from benchmarks.runner import RunSettings, run
from benchmarks.task import TaskManager
from dppo_embodied.taxonomy import SLUGS
from tests.benchmarks import fixtures as fx

CHROMIUM = Path("/usr/bin/chromium")
HOSTILE = "</script><script>document.title='pwned'</script><!-- é"


@pytest.fixture
def runs(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Two runs over BLINK (2 subtasks), one MVBench task and ERQA (one image missing -> a failed sample)."""
    data = tmp_path / "data"
    fx.make_mvbench(data / "mvbench", videos=True)
    fx.make_blink(data / "blink")
    fx.make_erqa(data / "erqa", missing_image=True)
    sels = TaskManager().resolve("mvbench_action_sequence,blink_counting,blink_jigsaw,erqa")
    a, b = tmp_path / "run_a", tmp_path / "run_b"
    run(sels, FakeBackend(responder=lambda r: HOSTILE if r.id == "erqa/2" else "A"),
        RunSettings(out=a, data_root=data, progress=False, frames=1))
    run(sels, FakeBackend("B"), RunSettings(out=b, data_root=data, progress=False, frames=1))
    return a, b, data


def _page_data(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S)
    assert m is not None
    return json.loads(m.group(1))


def test_page_is_self_contained_with_counts_gaps_and_thumbnails(runs: tuple[Path, Path, Path]) -> None:
    a, b, data = runs
    assert main(["report", str(a), "--compare", str(b), "--data-root", str(data)]) == 0
    html = (a / "report.html").read_text(encoding="utf-8")
    # self-contained: no external script, style, image or font; nothing fetched
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', html)
    assert "<link" not in html and "@import" not in html
    page = _page_data(html)
    results = json.loads((a / "results.json").read_text())
    assert [t["task"] for t in page["tasks"]] == list(results["tasks"])
    assert len(page["samples"]) == sum(e["n"] for e in results["tasks"].values()) == 3 + 4 + 3
    assert f'<span id="n-samples">{len(page["samples"])}</span>' in html
    assert '<span id="n-failed">1</span>' in html  # erqa/1: its image is missing
    subs = {s["subtask"]: s["n"] for s in page["subtasks"]}
    assert subs == {"mvbench_action_sequence": 3, "blink_counting": 3, "blink_jigsaw": 1}
    # gaps, not zeros: capabilities no task measured are "not evaluated" in the table, the SVG and the markdown
    measured = {s for s in SLUGS if results["capabilities"][s]["score"] is not None}
    assert measured and measured != set(SLUGS)
    for slug in set(SLUGS) - measured:
        assert re.search(rf"<tr data-slug='{slug}'><td>[^<]+</td><td class='na'>not evaluated</td>", html)
        assert re.search(rf'data-slug="{slug}">[^<]+<tspan[^>]*class="gap">not evaluated</tspan>', html)
    assert html.count('class="pt"') == 2 * len(measured)  # one point per measured capability and run, none at 0
    assert "not evaluated" in (a / "report.md").read_text()
    # thumbnails are inline JPEG data URLs of the dataset's images; the sample whose image is missing has none
    erqa = {s["id"]: s for s in page["samples"] if s["task"] == "erqa"}
    assert erqa["erqa/0"]["thumbs"] and erqa["erqa/0"]["thumbs"][0].startswith("data:image/jpeg;base64,")
    assert erqa["erqa/1"]["thumbs"] == [] and erqa["erqa/1"]["error"]
    blink = [s for s in page["samples"] if s["task"] == "blink"]
    assert all(s["thumbs"] for s in blink)  # parquet-embedded images work too
    mv = [s for s in page["samples"] if s["task"] == "mvbench"]
    assert all(len(s["thumbs"]) == 3 for s in mv)  # first, middle and last video frame
    # compare: the other run's score and response beside each sample
    assert page["compare"] == "run_b" and erqa["erqa/0"]["other"]["response"] == "B"
    # a response cannot end the data block early
    assert erqa["erqa/2"]["response"] == HOSTILE and "document.title='pwned'" not in html.split("report-data")[0]
    assert html.count("</script>") == 2


def test_report_without_data_has_no_thumbnails(runs: tuple[Path, Path, Path]) -> None:
    a, _, _ = runs
    assert main(["report", str(a)]) == 0
    page = _page_data((a / "report.html").read_text(encoding="utf-8"))
    assert page["compare"] is None and all(s["thumbs"] == [] for s in page["samples"])


def _chromium_dom(path: Path, tmp: Path, fragment: str = "") -> tuple[str, str]:
    """The DOM after scripts ran, and Chromium's log (console messages appear as ``:CONSOLE`` lines)."""
    profile = tmp / f"profile{len(list(tmp.glob('profile*')))}"
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000",
           "--dump-dom", path.as_uri() + fragment]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, proc.stderr


@pytest.mark.slow
def test_page_loads_in_headless_chromium_without_console_errors(runs: tuple[Path, Path, Path],
                                                                 tmp_path: Path) -> None:
    if not CHROMIUM.exists() or shutil.which(str(CHROMIUM)) is None:
        pytest.skip("Chromium is not installed at /usr/bin/chromium (apt-get install -y chromium)")
    a, b, data = runs
    assert main(["report", str(a), "--compare", str(b), "--data-root", str(data)]) == 0
    page = a / "report.html"
    dom, log = _chromium_dom(page, tmp_path)
    assert ":CONSOLE" not in log, [x for x in log.splitlines() if ":CONSOLE" in x]
    assert 'data-ready="1"' in dom and "pwned" not in dom.split("<title>")[1].split("</title>")[0]
    assert re.search(r'id="n-shown">10<', dom)  # every sample listed
    body = dom.split('id="samples-body">')[1].split("</tbody>")[0]
    assert body.count("<tr ") == 10 and body.count('<img src="data:image/jpeg;base64,') == 3 * 3 + 4 + 2
    assert re.search(r'<tr data-task="erqa"><td>erqa</td>', dom)
    # the failed-samples filter and the compare filter, preset through the address
    dom, log = _chromium_dom(page, tmp_path, "#status=failed")
    assert ":CONSOLE" not in log and re.search(r'id="n-shown">1<', dom)
    dom, log = _chromium_dom(page, tmp_path, "#task=blink&change=regressed")
    regressed = sum(1 for s in _page_data(page.read_text())["samples"] if s["task"] == "blink" and s["other"]
                    and s["score"] < s["other"]["score"])
    assert ":CONSOLE" not in log and re.search(rf'id="n-shown">{regressed}<', dom) and regressed > 0
