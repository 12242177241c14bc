"""EmbodiedSample: validation, JSONL round trip, path handling, errors naming file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dppo_embodied.errors import DataError
from dppo_embodied.types import (
    AnswerType,
    EmbodiedSample,
    VideoRef,
    format_answer,
    iter_sample_rows,
    iter_samples,
    load_samples,
    write_samples,
)


def _samples(tmp: Path) -> list[EmbodiedSample]:
    img = tmp / "media" / "a.png"
    img.parent.mkdir(parents=True, exist_ok=True)
    img.write_bytes(b"png")
    return [
        EmbodiedSample("s/0", "unit", "Which object is left?", "B", "mcq", images=[str(img)],
                       options=["red cube", "blue ball"], capabilities=["Spatial & Geometric"],
                       reasoning="The blue ball is at x=0.2, the red cube at x=0.7.",
                       metadata={"image_size": [96, 96]}),
        EmbodiedSample("s/1", "unit", "Is the cup full?", "no", AnswerType.YES_NO,
                       capabilities=["perception_grounding"]),
        EmbodiedSample("s/2", "unit", "How far apart (cm)?", 12.5, "number", metadata={"unit": "cm"},
                       video=VideoRef(str(tmp / "media" / "v.mp4"), fps=10, start=1.0, end=4.0, num_frames=30)),
        EmbodiedSample("s/3", "unit", "How many cubes?", 3, "count"),
        EmbodiedSample("s/4", "unit", "Point to the free space.", [[0.25, 0.5]], "points",
                       metadata={"mask": str(tmp / "media" / "m.png")}),
        EmbodiedSample("s/5", "unit", "Plan.", ["pick red", "place on blue"], "sequence",
                       capabilities=["decision_planning"]),
    ]


def test_round_trip_with_relative_paths(tmp_path: Path) -> None:
    samples = _samples(tmp_path)
    out = tmp_path / "samples.jsonl"
    assert write_samples(samples, out) == len(samples)
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert rows[0]["images"] == ["media/a.png"]  # relative inside the folder
    assert rows[0]["capabilities"] == ["spatial_geometric"]  # names normalised to slugs
    loaded, errors = load_samples(out)
    assert errors == []
    assert [s.to_dict() for s in loaded] == [s.to_dict() for s in samples]
    assert loaded[2].horizon_s == pytest.approx(3.0)


def test_folder_can_move(tmp_path: Path) -> None:
    write_samples(_samples(tmp_path), tmp_path / "samples.jsonl")
    moved = tmp_path.parent / (tmp_path.name + "_moved")
    tmp_path.rename(moved)
    s = next(iter_samples(moved / "samples.jsonl"))
    assert s.images[0] == str((moved / "media" / "a.png").resolve())


@pytest.mark.parametrize(
    ("row", "needle"),
    [
        ("{not json", "malformed"),
        (json.dumps({"id": "x", "source": "s", "question": "q", "answer": "Z", "answer_type": "mcq",
                     "options": ["a", "b"]}), "mcq answer must be one of"),
        (json.dumps({"id": "x", "source": "s", "question": "q", "answer": 1, "answer_type": "weird"}), "answer_type"),
        (json.dumps({"id": "x", "source": "s", "question": "q", "answer": 1, "answer_type": "count",
                     "colour": "red"}), "unknown sample field"),
        (json.dumps({"id": "x", "source": "s", "question": "q", "answer": "yes", "answer_type": "yes_no",
                     "capabilities": ["telepathy"]}), "unknown capability"),
        (json.dumps({"id": "x", "source": "s", "answer": 1, "answer_type": "count"}), "missing required"),
        ("[1, 2]", "JSON object"),
    ],
)
def test_malformed_row_names_file_and_line(tmp_path: Path, row: str, needle: str) -> None:
    good = json.dumps(EmbodiedSample("ok", "s", "q", 2, "count").to_dict())
    path = tmp_path / "bad.jsonl"
    path.write_text(good + "\n\n" + row + "\n" + good + "\n")
    with pytest.raises(DataError) as e:
        load_samples(path)
    assert f"{path}:3" in str(e.value) and needle in str(e.value)
    # collecting never drops silently: the bad row is reported, the good ones kept
    samples, errors = load_samples(path, on_error="collect")
    assert len(samples) == 2 and len(errors) == 1 and f"{path}:3" in errors[0]


def test_missing_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such samples file"):
        load_samples(tmp_path / "nope.jsonl")


@pytest.mark.parametrize(
    ("sample", "text"),
    [
        (EmbodiedSample("a", "s", "q", "B", "mcq", options=["x", "y"]), "B"),
        (EmbodiedSample("a", "s", "q", 12.0, "number"), "12"),
        (EmbodiedSample("a", "s", "q", [[0.25, 0.5]], "points"), "[(0.25, 0.50)]"),
        (EmbodiedSample("a", "s", "q", ["pick", "place"], "sequence"), "1. pick\n2. place"),
    ],
)
def test_format_answer(sample: EmbodiedSample, text: str) -> None:
    assert format_answer(sample) == text


def test_numbers_must_be_finite() -> None:
    with pytest.raises(DataError):
        EmbodiedSample("a", "s", "q", float("nan"), "number")
    with pytest.raises(DataError):
        EmbodiedSample("a", "s", "q", True, "count")


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b'{"id": "x", "question": "\xff\xfe"}', "not UTF-8"),
        (b"[" * 100_000, "not JSON (RecursionError"),
        (json.dumps({"id": "x", "source": "s", "question": "q", "answer": 1, "answer_type": "count",
                     "images": "a.png"}).encode(), "'images' must be a list of strings"),
        (json.dumps({"id": "x", "source": "s", "question": "q", "answer": 1, "answer_type": "count",
                     "video": "v.mp4"}).encode(), "'video' must be an object"),
        (json.dumps({"id": "x", "source": "s", "question": ["q"], "answer": 1, "answer_type": "count"}).encode(),
         "'question' must be a string"),
        (json.dumps({"id": "x", "source": "s", "question": "q", "answer": 1, "answer_type": "count",
                     "metadata": {"mask": 3}, "video": {"path": "v.mp4", "speed": 2}}).encode(), "TypeError"),
    ],
)
def test_one_bad_line_fails_alone(tmp_path: Path, raw: bytes, needle: str) -> None:
    """A non-UTF-8 byte, a too-deep line or a field of the wrong type is one malformed row; the file goes on."""
    good = json.dumps(EmbodiedSample("ok", "s", "q", 2, "count").to_dict()).encode()
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + good + b"\n" + raw + b"\n" + good.replace(b'"ok"', b'"ok2"') + b"\n")
    samples, errors = load_samples(path, on_error="collect")
    assert [s.id for s in samples] == ["ok", "ok2"]  # a byte-order mark on line 1 is fine
    assert len(errors) == 1 and f"{path}:2: malformed sample row" in errors[0] and needle in errors[0]
    with pytest.raises(DataError, match=f"{path}:2"):
        load_samples(path)
    rows = list(iter_sample_rows(path))
    assert [(n, s is None) for n, s, _ in rows] == [(1, False), (2, True), (3, False)]
