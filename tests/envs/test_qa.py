"""Procedural QA: every template end to end, answers checked against the parsers, masks, determinism, splits."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dppo_embodied import parsing
from dppo_embodied.errors import ConfigError, UnknownNameError
from dppo_embodied.taxonomy import SLUGS
from dppo_embodied.types import AnswerType, EmbodiedSample, format_answer, load_samples
from envs.qa import REPLAY_TEMPLATES, TABLETOP_TEMPLATES, generate, question_templates, templates_for

pytest.importorskip("mujoco")


@pytest.fixture(scope="module")
def per_template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[EmbodiedSample]]:
    """Two samples of every tabletop template (one scene, so the GL context is made once per template call)."""
    out = {}
    root = tmp_path_factory.mktemp("qa")
    for name in TABLETOP_TEMPLATES:
        out[name] = generate("tabletop-qa", 2, seed=1, templates=[name], out_dir=root / name, progress=False)
    return out


def _parse(s: EmbodiedSample, text: str) -> object:
    t = s.answer_type
    if t is AnswerType.MCQ:
        return parsing.parse_option(text, num_options=len(s.options))
    if t is AnswerType.YES_NO:
        return parsing.parse_yes_no(text)
    if t is AnswerType.COUNT:
        return parsing.parse_count(text)
    if t is AnswerType.NUMBER:
        return parsing.parse_number(text)
    if t is AnswerType.POINTS:
        return parsing.parse_points(text)
    return parsing.parse_sequence(text)


def test_every_capability_is_covered() -> None:
    assert set(templates_for("tabletop-qa")) == set(SLUGS)


def test_every_template_yields_valid_samples(per_template: dict[str, list[EmbodiedSample]]) -> None:
    for name, samples in per_template.items():
        assert len(samples) == 2, name
        for s in samples:
            md = s.metadata
            assert md["template"] in (name, "which_pushed", "first_pushed", "push_sequence")
            assert md["image_size"] == [96, 96] and "difficulty" in md and md["split"] == "train"
            assert s.capabilities[0] == TABLETOP_TEMPLATES[name].capability
            assert s.reasoning and len(s.reasoning) < 400
            assert s.images and all(Path(p).is_file() and Path(p).is_absolute() for p in s.images)
            if s.answer_type is AnswerType.MCQ:
                assert 2 <= len(s.options) <= 4 and len(set(s.options)) == len(s.options)
            if s.answer_type in (AnswerType.COUNT, AnswerType.NUMBER):
                assert isinstance(s.answer, int) and 0 <= s.answer <= 60
            if s.answer_type is AnswerType.NUMBER:
                assert md["unit"] == "cm"
            # the canonical answer text parses back to the answer with the shared parsers
            back = _parse(s, format_answer(s))
            if s.answer_type is AnswerType.POINTS:
                assert np.allclose(back, s.answer, atol=0.006)
            elif s.answer_type is AnswerType.SEQUENCE:
                assert [parsing.normalize_step(x) for x in back] == [parsing.normalize_step(x) for x in s.answer]
            else:
                assert back == s.answer, (name, format_answer(s), s.answer)


def test_point_answers_lie_inside_their_masks(per_template: dict[str, list[EmbodiedSample]]) -> None:
    for name in ("point_to", "free_spot"):
        for s in per_template[name]:
            assert "Answer with normalized (x, y) coordinates." in s.question
            mask = np.asarray(Image.open(s.metadata["mask"])) > 0
            assert mask.shape == (96, 96) and mask.sum() == s.metadata["mask_pixels"]
            for x, y in s.answer:
                assert mask[min(int(y * 96), 95), min(int(x * 96), 95)]


def test_clips_carry_horizon_and_frames(per_template: dict[str, list[EmbodiedSample]]) -> None:
    for s in per_template["push_order"] + per_template["push_direction"]:
        md = s.metadata
        assert md["num_frames"] == len(s.images) >= 2
        assert md["horizon_s"] > 0 and len(md["frame_times"]) == md["num_frames"]
        assert s.horizon_s == md["horizon_s"]


def test_longer_clips_have_more_events(tmp_path: Path) -> None:
    short = generate("tabletop-qa", 3, 0, templates=["push_order"], difficulty={"clip_s": 2}, out_dir=tmp_path / "a",
                     progress=False)
    long = generate("tabletop-qa", 3, 0, templates=["push_order"], difficulty={"clip_s": 6}, out_dir=tmp_path / "b",
                    progress=False, videos=True)
    assert all(s.metadata["template"] == "which_pushed" for s in short)
    assert all(s.metadata["template"] == "push_sequence" and len(s.answer) == 3 for s in long)
    assert min(s.metadata["horizon_s"] for s in long) > max(s.metadata["horizon_s"] for s in short)
    assert all(s.video is not None and Path(s.video.path).is_file() for s in long)
    import av  # the clip is written at its own fractional fps: its timestamps match the VideoRef

    for s in long:
        with av.open(s.video.path) as c:
            times = [float(f.time) for f in c.decode(video=0)]
        assert len(times) == s.video.num_frames
        assert times[-1] == pytest.approx(s.video.end, abs=0.02)


def test_generation_is_deterministic_and_splits_differ(tmp_path: Path) -> None:
    kw = {"capabilities": ["perception_grounding", "spatial_geometric", "physical_causal"], "progress": False}
    a = generate("tabletop-qa", 6, 3, out_dir=tmp_path / "a", **kw)
    b = generate("tabletop-qa", 6, 3, out_dir=tmp_path / "b", **kw)
    h = generate("tabletop-qa", 6, 3, out_dir=tmp_path / "h", split="heldout", **kw)
    for x, y in zip(a, b, strict=True):
        assert (x.question, x.answer, x.options, x.reasoning) == (y.question, y.answer, y.options, y.reasoning)
        assert all(Image.open(p).tobytes() == Image.open(q).tobytes() for p, q in zip(x.images, y.images, strict=True))
    assert [s.capabilities[0] for s in a] == ["perception_grounding", "spatial_geometric", "physical_causal"] * 2
    assert [x.reasoning for x in a] != [x.reasoning for x in h]
    assert all(s.metadata["split"] == "heldout" and "/heldout/" in s.id for s in h)


def test_jsonl_round_trip(tmp_path: Path) -> None:
    samples = generate("tabletop-qa", 9, 0, out_dir=tmp_path, progress=False)
    loaded, errors = load_samples(tmp_path / "samples.jsonl")
    assert not errors and len(loaded) == 9
    assert [s.id for s in loaded] == [s.id for s in samples]
    assert all(Path(p).is_file() for s in loaded for p in s.images)
    assert len({s.capabilities[0] for s in loaded}) == 9


def test_difficulty_knobs_are_applied(tmp_path: Path) -> None:
    samples = generate("tabletop-qa", 4, 0, templates=["count_all"], difficulty={"n_objects": [6, 7]},
                       out_dir=tmp_path, progress=False)
    assert all(6 <= s.answer <= 7 and s.metadata["difficulty"]["n_objects"] == [6, 7] for s in samples)


def test_close_camera_shows_larger_objects_and_its_answers_follow_it(tmp_path: Path) -> None:
    near = generate("tabletop-qa", 8, 0, templates=["point_to"], difficulty={"camera": "close"},
                    out_dir=tmp_path / "close", progress=False)
    far = generate("tabletop-qa", 8, 0, templates=["point_to"], out_dir=tmp_path / "front", progress=False)
    assert all(s.metadata["difficulty"]["camera"] == "close" for s in near)
    # the pointed object's mask (its pixels in the question's image) is several times larger, and the answer
    # point lies inside it
    assert np.median([s.metadata["mask_pixels"] for s in near]) >= 2 * np.median([s.metadata["mask_pixels"]
                                                                                    for s in far])
    for s in near:
        mask = np.asarray(Image.open(s.metadata["mask"])) > 0
        x, y = s.answer[0]
        assert mask[int(y * mask.shape[0]), int(x * mask.shape[1])]


def test_replay_suite(tmp_path: Path) -> None:
    samples = generate("replay", 10, 0, out_dir=tmp_path, progress=False)
    assert {s.metadata["template"] for s in samples} <= set(REPLAY_TEMPLATES)
    assert all(s.source == "replay" and Path(s.images[0]).is_file() for s in samples)
    for s in samples:
        if s.answer_type is AnswerType.COUNT:
            assert 1 <= s.answer <= 4


def test_flat_qa_suite_answers_score_and_masks_match(tmp_path: Path) -> None:
    from dppo_embodied.metrics.sample import score_sample

    samples = generate("flat-qa", 36, 0, out_dir=tmp_path, progress=False)
    assert {s.metadata["template"] for s in samples} == {"flat_point", "flat_count_color", "flat_left_of",
                                                         "flat_count_all", "flat_majority", "flat_point_one"}
    assert generate("replay", 10, 0, out_dir=tmp_path / "r", progress=False)[0].question == \
        generate("replay", 10, 0, out_dir=tmp_path / "r2", progress=False)[0].question  # replay draws unchanged
    for s in samples:
        assert score_sample(s, f"<answer>{format_answer(s)}</answer>").success
        if s.answer_type is AnswerType.POINTS:  # the target is one point among many correct ones
            mask = np.asarray(Image.open(s.metadata["mask"])) > 0
            assert mask.sum() == s.metadata["mask_pixels"] >= 12
            assert score_sample(s, "<answer>[(0.01, 0.01)]</answer>").success is bool(mask[0, 0])
        if s.answer_type is AnswerType.COUNT:
            assert 0 <= s.answer <= 6 and (s.reasoning.endswith(f"{s.answer}.") or s.answer == 0)
        if s.metadata["template"] == "flat_majority":  # the named colour is strictly the most frequent one
            counts = {c: int(n) for n, c in (x.split() for x in s.reasoning.split(":")[0].split("; "))}
            best = s.options["ABCD".index(s.answer)]
            assert all(n < counts[best] for c, n in counts.items() if c != best) and set(counts) <= set(s.options)


@pytest.mark.parametrize(("kwargs", "err"), [
    ({"suite": "nope"}, UnknownNameError), ({"capabilities": ["flying"]}, Exception),
    ({"difficulty": {"speed": 3}}, ConfigError), ({"difficulty": {"n_objects": [0, 3]}}, ConfigError),
    ({"difficulty": {"camera": "side"}}, ConfigError),
    ({"split": "test"}, ConfigError), ({"n": -1}, ConfigError), ({"image_size": 8}, ConfigError),
    ({"templates": ["nope"]}, UnknownNameError),
    ({"suite": "replay", "capabilities": ["physical_causal"]}, ConfigError),
])
def test_bad_arguments_are_typed_errors(kwargs: dict, err: type[Exception], tmp_path: Path) -> None:
    args = {"suite": "tabletop-qa", "n": 1, "seed": 0, "out_dir": tmp_path, "progress": False}
    args.update(kwargs)
    with pytest.raises(err) as e:
        generate(**args)
    assert str(e.value)


def test_unknown_difficulty_message_lists_valid_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="clip_s"):
        generate("tabletop-qa", 1, 0, difficulty={"speed": 1}, out_dir=tmp_path, progress=False)


def test_question_templates_corpus() -> None:
    texts = question_templates("replay", n_per_template=2)
    assert len(texts) > 10 and all(isinstance(t, str) and t for t in texts)
    assert any("How many" in t for t in texts)


def test_distances_are_true_distances(per_template: dict[str, list[EmbodiedSample]]) -> None:
    for s in per_template["distance_cm"]:
        (ax, ay), (bx, by) = [(float(x), float(y)) for x, y in re.findall(r"\((-?\d+), (-?\d+)\) cm", s.reasoning)]
        assert abs(math.hypot(ax - bx, ay - by) - s.answer) <= 1.5
