"""The fake backend's replay file is read by the core's JSONL reader (``dppo_embodied.io.iter_json_lines``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.backends.fake import FakeBackend
from dppo_embodied.conversation import Conversation
from dppo_embodied.errors import DataError
from dppo_embodied.generation import ChatRequest


def _answers(backend: FakeBackend, ids: list[str]) -> list[object]:
    out: list[object] = [None] * len(ids)

    def on_result(i: int, value: object) -> None:
        out[i] = value

    backend.generate([ChatRequest(Conversation("q"), id=i) for i in ids], on_result)
    return out


def test_replay_answers_by_id_and_unknown_ids_get_empty_text(tmp_path: Path) -> None:
    f = tmp_path / "replay.jsonl"
    f.write_bytes(b'\xef\xbb\xbf{"id": "a", "response": "B"}\n\n'  # a byte-order mark and a blank line
                  b'{"id": 7, "response": null}\n{"id": "c", "response": "D"}')
    assert _answers(FakeBackend(str(f)), ["a", "7", "c", "zz"]) == ["B", "", "D", ""]


@pytest.mark.parametrize("line", [b"not json", b'{"response": "A"}', b"\xff\xfe"])
def test_a_bad_replay_line_names_file_and_line(tmp_path: Path, line: bytes) -> None:
    f = tmp_path / "replay.jsonl"
    f.write_bytes(b'{"id": "a", "response": "B"}\n' + line + b"\n")
    with pytest.raises(DataError, match=r"replay\.jsonl:2: expected"):
        FakeBackend(str(f))


def test_a_constant_answer_when_the_model_is_not_a_file() -> None:
    assert _answers(FakeBackend("C"), ["x"]) == ["C"]
