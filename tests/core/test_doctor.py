"""`dppo doctor`: every check reports ok/warn/fail with a fix, and a failed required check exits 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dppo_embodied import doctor


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    rc = doctor.main(["--json", *argv])
    return rc, json.loads(capsys.readouterr().out)


def test_json_report_names_every_check(capsys: pytest.CaptureFixture[str]) -> None:
    rc, rep = _run(capsys, "--skip-render", "--min-free-gb", "0")
    names = [c["name"] for c in rep["checks"]]
    assert {"python", "venv/PATH", "cuda", "vllm", "disk"} <= set(names)
    assert rc == 0 and rep["ok"] is True
    for c in rep["checks"]:
        assert c["status"] in ("ok", "warn", "fail")
        if c["status"] != "ok":
            assert c["fix"], c  # every finding that is not ok says what to do


def test_failed_required_check_exits_1_and_says_what_to_fix(capsys: pytest.CaptureFixture[str]) -> None:
    rc = doctor.main(["--skip-render", "--min-free-gb", "1e12"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "[FAIL] disk" in out and "fix: free some space" in out
    assert "1 required check(s) failed: disk" in out


@pytest.mark.mujoco
def test_render_probe_renders_one_frame() -> None:
    c = doctor.check_render(timeout_s=120)
    assert c.status == "ok", c
    assert "rendered a frame" in c.detail


def test_broken_gl_backend_is_a_failed_check_with_a_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("mujoco")
    monkeypatch.setenv("MUJOCO_GL", "no_such_backend")
    monkeypatch.setenv("PYOPENGL_PLATFORM", "no_such_backend")
    c = doctor.check_render(timeout_s=120)
    assert c.status == "fail"
    assert "MUJOCO_GL=no_such_backend" in c.detail and "apt-get install libegl1" in c.fix


def test_datasets_are_checked_through_dppo_eval_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, rep = _run(capsys, "--skip-render", "--min-free-gb", "0", "--tasks", "erqa,tabletop_qa",
                   "--data-root", str(tmp_path), "--data", f"tabletop_qa={tmp_path / 'qa'}")
    ds = next(c for c in rep["checks"] if c["name"] == "datasets")
    assert rc == 1 and ds["status"] == "fail"
    assert f"hf download embodiedreasoning/ERQA --repo-type dataset --local-dir {tmp_path / 'erqa'}" in ds["detail"]
    assert "dppo data generate --suite tabletop-qa" in ds["detail"] and str(tmp_path / "qa") in ds["detail"]
    (tmp_path / "qa").mkdir()
    (tmp_path / "qa" / "samples.jsonl").write_text("{}\n")
    rc, rep = _run(capsys, "--skip-render", "--min-free-gb", "0", "--data", f"tabletop_qa={tmp_path / 'qa'}")
    ds = next(c for c in rep["checks"] if c["name"] == "datasets")
    assert ds["status"] == "ok" and rc == 0, ds


def test_path_check_tells_how_to_get_dppo_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    c = doctor.check_path()
    assert c.status == "warn" and "not on PATH" in c.detail
    assert "source" in c.fix and "bin/activate" in c.fix
