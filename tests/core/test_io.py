"""The one I/O layer: JSONL read/append, atomic writes, read_json, rank from the environment."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dppo_embodied.errors import ConfigError, DataError
from dppo_embodied.io import (
    JsonlWriter,
    append_jsonl,
    atomic_open,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_jsonl,
    atomic_write_text,
    iter_json_lines,
    json_line,
    rank_world_from_env,
    read_json,
    to_jsonable,
)


def test_iter_json_lines_reports_bad_lines_with_their_number(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    deep = b"[" * 100_000 + b"]" * 100_000
    p.write_bytes(b'\xef\xbb\xbf{"a": 1}\n\n{bad\n\xff\xfe\n' + deep + b'\n[2]\n{"torn": tru')
    rows = list(iter_json_lines(p))
    assert [(n, v) for n, v, e in rows if e is None] == [(1, {"a": 1}), (6, [2])]
    errors = {n: e for n, _, e in rows if e is not None}
    assert set(errors) == {3, 4, 5, 7}
    assert "not JSON" in errors[3] and "not UTF-8" in errors[4] and "RecursionError" in errors[5]
    with pytest.raises(DataError, match="cannot open"):
        list(iter_json_lines(tmp_path / "missing.jsonl"))


def test_require_newline_refuses_a_torn_tail_even_when_it_parses(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    p.write_text('{"id": "a"}\n{"id": "b"}')
    assert [v for _, v, _ in iter_json_lines(p)] == [{"id": "a"}, {"id": "b"}]
    rows = list(iter_json_lines(p, require_newline=True))
    assert rows[0] == (1, {"id": "a"}, None) and rows[1][1] is None and "torn" in rows[1][2]


def test_jsonl_writer_cuts_a_torn_tail_and_appends(tmp_path: Path) -> None:
    p = tmp_path / "sub" / "r.jsonl"
    with JsonlWriter(p) as w:
        w.write({"id": "a", "x": float("nan")})
        assert p.read_text().endswith("\n")  # flushed before close
    with p.open("a") as f:
        f.write('{"id": "half')
    with JsonlWriter(p, fsync_each=True) as w:
        assert w.write_many([{"id": "b"}, {"id": "c", "t": (1, 2)}]) == 2
    assert [v for _, v, _ in iter_json_lines(p, require_newline=True)] == [
        {"id": "a", "x": "nan"}, {"id": "b"}, {"id": "c", "t": [1, 2]}]
    assert append_jsonl(p, [{"id": "d"}]) == 1
    assert len(p.read_text().splitlines()) == 4


def test_json_line_encodes_lone_surrogates_and_odd_values() -> None:
    line = json_line({"s": "\ud800x", "n": np.float32(1.5), "p": Path("/x"), "o": object()})
    line.encode("utf-8")
    back = json.loads(line)
    assert back["s"] == "\ud800x" and back["n"] == 1.5 and back["p"] == "/x" and back["o"].startswith("<object")
    assert to_jsonable({"a": {1, 3, 2}, "b": math.inf, "c": np.arange(3)}) == {"a": [1, 2, 3], "b": "inf",
                                                                               "c": [0, 1, 2]}


def test_atomic_writers_round_trip_and_leave_no_temp_files(tmp_path: Path) -> None:
    atomic_write_text(tmp_path / "d" / "t.txt", "héllo")
    atomic_write_bytes(tmp_path / "d" / "b.bin", b"\x00\x01")
    atomic_write_json(tmp_path / "d" / "j.json", {"p": Path("/x"), "s": {2, 1}, "v": np.int64(3), "nan": math.nan})
    atomic_write_json(tmp_path / "d" / "strict.json", {"nan": math.nan, "o": object()}, strict=True)
    assert atomic_write_jsonl(tmp_path / "d" / "l.jsonl", ({"i": i} for i in range(3))) == 3
    assert (tmp_path / "d" / "t.txt").read_text(encoding="utf-8") == "héllo"
    assert (tmp_path / "d" / "b.bin").read_bytes() == b"\x00\x01"
    j = read_json(tmp_path / "d" / "j.json")
    assert j["p"] == "/x" and j["s"] == [1, 2] and j["v"] == 3 and math.isnan(j["nan"])
    strict = (tmp_path / "d" / "strict.json").read_text()
    assert "NaN" not in strict and json.loads(strict)["nan"] == "nan"
    assert [v for _, v, _ in iter_json_lines(tmp_path / "d" / "l.jsonl")] == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert sorted(f.name for f in (tmp_path / "d").iterdir()) == ["b.bin", "j.json", "l.jsonl", "strict.json",
                                                                  "t.txt"]


def test_atomic_open_keeps_the_old_file_when_the_write_fails(tmp_path: Path) -> None:
    p = tmp_path / "x.json"
    atomic_write_json(p, {"v": 1})
    with pytest.raises(RuntimeError), atomic_open(p) as f:
        f.write('{"v": 2, "half')
        raise RuntimeError("killed mid-write")
    assert read_json(p) == {"v": 1} and [f.name for f in tmp_path.iterdir()] == ["x.json"]
    with pytest.raises(ValueError, match="mode"):
        atomic_open(p, "a").__enter__()


def test_atomic_write_survives_kill_9_mid_write(tmp_path: Path) -> None:
    """A writer killed between the temp write and the rename leaves the old file whole."""
    p = tmp_path / "state.json"
    atomic_write_json(p, {"v": "old"})
    code = ("import os, sys\nfrom dppo_embodied.io import atomic_open\n"
            f"with atomic_open({str(p)!r}) as f:\n    f.write('{{\"v\": \"new')\n    f.flush()\n"
            "    os.kill(os.getpid(), 9)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2], check=False)
    assert proc.returncode == -9
    assert read_json(p) == {"v": "old"}
    assert any(".tmp-" in f.name for f in tmp_path.iterdir())  # the leftover that clean_partial removes


def test_read_json_default_and_errors(tmp_path: Path) -> None:
    assert read_json(tmp_path / "none.json", default={}) == {}
    with pytest.raises(DataError, match="no such JSON file"):
        read_json(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    for content in (b"{broken", b"\xff\xfe", b"[" * 100_000):
        bad.write_bytes(content)
        with pytest.raises(DataError, match=r"bad\.json: cannot read JSON"):
            read_json(bad, default={})


@pytest.mark.parametrize(("env", "expected"), [({}, (0, 1)), ({"RANK": "1", "WORLD_SIZE": "2"}, (1, 2)),
                                               ({"RANK": "0", "WORLD_SIZE": "0"}, (0, 1))])
def test_rank_world_from_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: tuple[int, int]) -> None:
    for k in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert rank_world_from_env() == expected


@pytest.mark.parametrize("env", [{"RANK": "x"}, {"RANK": "2", "WORLD_SIZE": "2"}, {"WORLD_SIZE": "two"}])
def test_rank_world_from_env_refuses_bad_values(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for k in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError, match="RANK"):
        rank_world_from_env()


def test_io_needs_no_torch() -> None:
    code = "import sys, dppo_embodied.io, dppo_embodied.types; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2], env={**os.environ})
    assert out.stdout.strip() == "False"
