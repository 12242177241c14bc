"""Decision recording in the LeRobotDataset v3 layout, read back with pyarrow and with the envs reader."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from dppo_embodied.errors import ConfigError, DataError
from robot_bridge.recording import DecisionRecorder
from tests.bridge.conftest import BridgeFactory
from tests.helpers.fake_openai_server import FakeOpenAIServer, image_urls

pq = pytest.importorskip("pyarrow.parquet")


@pytest.mark.network
def test_bridge_records_every_decision(make_bridge: BridgeFactory, tmp_path: Path) -> None:
    replies = iter(['{"action": {"type": "move", "dx_cm": 2}}', "no idea", '{"action": {"type": "done"}}'] * 2)
    root = tmp_path / "rec"
    with FakeOpenAIServer(responder=lambda r: next(replies)) as srv:
        b = make_bridge(srv.url, record=str(root), episodes=2)
        r1 = b.run_episode()
        r2 = b.run_episode(task="Touch it again.")
        b.close()
        sent_jpegs = [image_urls(r["json"])[0] for r in srv.chat_requests]
    assert r1.status == r2.status == "done" and r1.steps == r2.steps == 3
    info = json.loads((root / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["total_episodes"] == 2 and info["total_frames"] == 6
    assert info["features"]["observation.images.front"]["dtype"] == "image"
    assert isinstance(info["fps"], int) and info["fps"] >= 1
    rows = pq.read_table(root / "data" / "chunk-000" / "file-000.parquet").to_pylist()
    assert [row["decision.status"] for row in rows] == ["ok", "invalid", "done"]
    assert rows[1]["decision.raw_text"] == "no idea" and "JSON" in rows[1]["decision.error"]
    assert json.loads(rows[0]["decision.command"])["action"]["dx_cm"] == 2.0
    wps = json.loads(rows[0]["decision.waypoints"])
    assert wps and rows[0]["action"] == pytest.approx(wps[0][:4])
    assert rows[0]["action"][0] == pytest.approx(rows[0]["observation.state"][0] + 0.02, abs=1e-6)
    assert len(rows[0]["decision.latency_ms"]) == 6 and rows[0]["decision.latency_ms"][2] > 0
    assert [row["timestamp"] for row in rows] == pytest.approx([0.0, 1 / info["fps"], 2 / info["fps"]])
    elapsed = [row["decision.elapsed_s"] for row in rows]  # the wall clock, kept beside the nominal timestamp
    assert elapsed[0] == 0.0 and elapsed == sorted(elapsed) and elapsed[2] > 0
    jpeg = rows[0]["observation.images.front"]["bytes"]
    assert Image.open(io.BytesIO(jpeg)).format == "JPEG"
    assert jpeg == base64.b64decode(sent_jpegs[0].partition(",")[2])  # exactly what the model received
    assert [row["index"] for row in pq.read_table(root / "data" / "chunk-000" / "file-001.parquet").to_pylist()] \
        == [3, 4, 5]
    tasks = pq.read_table(root / "meta" / "tasks.parquet")
    assert tasks.to_pydict() == {"task_index": [0, 1], "task": ["Touch the box.", "Touch it again."]}
    assert tasks.to_pandas().index.name == "task"  # LeRobot's ds[i]["task"] is the instruction string
    eps = pq.read_table(root / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pylist()
    assert [(e["dataset_from_index"], e["dataset_to_index"]) for e in eps] == [(0, 3), (3, 6)]
    assert json.loads(eps[0]["info"])["status"] == "done"
    assert len(eps[0]["stats/action/q50"]) == 4 and eps[0]["stats/action/count"] == [3]
    stats = json.loads((root / "meta" / "stats.json").read_text())
    assert {"q01", "q99"} <= set(stats["observation.state"]) and "decision.raw_text" not in stats

    lerobot_dataset = pytest.importorskip("envs.lerobot_dataset")
    ds = lerobot_dataset.LeRobotDatasetV3(root)
    assert ds.num_episodes == 2 and len(ds) == 6 and ds.image_keys == ["observation.images.front"]
    ep = ds.episode(1)
    assert ep.length == 3 and ep.tasks == ["Touch it again."]
    assert ep.data["observation.state"].shape == (3, 4)
    assert list(ep.data["decision.status"]) == ["ok", "invalid", "done"]
    assert ds.frames(0, "observation.images.front", [0])[0].shape == tuple(info["features"][
        "observation.images.front"]["shape"])  # the image feature reads back


def test_recorder_guards(tmp_path: Path) -> None:
    rec = DecisionRecorder(tmp_path / "a", fps=2)
    with pytest.raises(DataError, match="start_episode"):
        rec.add(None)  # type: ignore[arg-type]
    rec.start_episode("An episode without a decision.")
    rec.close()
    assert not (tmp_path / "a").exists()  # a run that recorded no episode leaves nothing behind
    (tmp_path / "a" / "meta").mkdir(parents=True)
    (tmp_path / "a" / "meta" / "info.json").write_text("{}")
    with pytest.raises(ConfigError, match="already holds"):
        DecisionRecorder(tmp_path / "a", fps=2)
    DecisionRecorder(tmp_path / "a", fps=2, overwrite=True).close()
    assert (tmp_path / "a" / "meta" / "info.json").read_text() == "{}"  # nothing recorded: the old one stays
    assert DecisionRecorder(tmp_path / "b", fps=0.5).fps == 1  # LeRobot stores an integer fps
    with pytest.raises(ConfigError, match="positive"):
        DecisionRecorder(tmp_path / "c", fps=0)
