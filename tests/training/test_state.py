"""Atomic state files and checkpoints; a step never completes twice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dppo_embodied.errors import DataError, TrainingError
from dppo_embodied.io import atomic_write_json, read_json
from training.runs.state import StateStore, clean_partial, commit_checkpoint


def test_atomic_json_roundtrip_and_corruption(tmp_path: Path) -> None:
    p = tmp_path / "a" / "x.json"
    atomic_write_json(p, {"k": [1, 2], "p": Path("/x")})
    assert read_json(p) == {"k": [1, 2], "p": "/x"}
    assert not [f for f in p.parent.iterdir() if ".tmp-" in f.name]
    assert read_json(tmp_path / "missing.json", default={}) == {}
    p.write_text("{broken")
    with pytest.raises(DataError, match="corrupt"):
        read_json(p)
    (tmp_path / "state.json").write_text("{broken")
    with pytest.raises(TrainingError, match=r"state\.json.*start a fresh run"):
        StateStore(tmp_path, "run").load()


def test_store_commits_once_and_reloads(tmp_path: Path) -> None:
    store = StateStore(tmp_path, "run")
    st = store.load()
    assert st.completed == [] and not store.exists()
    store.commit(st, "prepare", model_path="m")
    st.model_path = "ckpt/a"
    store.save(st)
    again = StateStore(tmp_path, "run").load()
    assert again.completed == ["prepare"] and again.model_path == "ckpt/a"
    assert again.values["prepare"] == {"model_path": "m"}
    with pytest.raises(TrainingError, match="already completed"):
        store.commit(again, "prepare")
    journal = [json.loads(x) for x in (tmp_path / "journal.jsonl").read_text().splitlines()]
    assert [j["step"] for j in journal] == ["prepare"]
    with pytest.raises(TrainingError, match="belongs to run 'run'"):
        StateStore(tmp_path, "other").load()


def test_commit_checkpoint_replaces_and_cleans(tmp_path: Path) -> None:
    def save(text: str):
        def _s(d: Path) -> None:
            d.mkdir(parents=True)
            (d / "w.txt").write_text(text)
        return _s

    final = commit_checkpoint(save("one"), tmp_path / "ckpt" / "a")
    assert (final / "w.txt").read_text() == "one"
    commit_checkpoint(save("two"), final)
    assert (final / "w.txt").read_text() == "two"
    # leftovers of a killed write are removed on the next start
    (tmp_path / "ckpt" / "b.tmp-123").mkdir()
    (tmp_path / ".state.json.tmp-9").write_text("x")
    removed = clean_partial(tmp_path)
    assert {p.name for p in removed} == {"b.tmp-123", ".state.json.tmp-9"}
    assert (final / "w.txt").is_file()
