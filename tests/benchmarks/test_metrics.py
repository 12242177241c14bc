"""Tests of dppo_embodied.metrics: the one definition of success per answer type, with realistic model outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dppo_embodied.errors import MediaError
from dppo_embodied.metrics import (
    MRA_THRESHOLDS,
    Score,
    bbox_iou,
    format_ok,
    load_mask,
    mra,
    pixel_points_in_mask,
    point_in_polygon,
    points_in_mask,
    score_sample,
    sequence_score,
)
from dppo_embodied.types import EmbodiedSample


def _s(answer_type: str, answer, **kw) -> EmbodiedSample:
    return EmbodiedSample(id="t/0", source="test", question="q", answer=answer, answer_type=answer_type, **kw)


# ---------------------------------------------------------------------------------------------------------- MRA
def test_mra_has_ten_thresholds_like_vsi_bench() -> None:
    assert len(MRA_THRESHOLDS) == 10
    assert MRA_THRESHOLDS[0] == pytest.approx(0.5) and MRA_THRESHOLDS[-1] == pytest.approx(0.05)


@pytest.mark.parametrize(
    ("pred", "gt", "expected"),
    [
        (10.0, 10.0, 1.0),
        (10.4, 10.0, 1.0),  # 4 % off passes every tolerance down to 5 %
        (11.0, 10.0, 0.9),  # 10 % off: passes 0.50..0.10, fails 0.05
        (12.0, 10.0, 0.6),  # 20 %: 1 - 0.8 is 0.19999999999999996 in floating point, exactly as the official code
        (15.0, 10.0, 1.0 / 10),  # 50 % passes only theta = 0.50
        (16.0, 10.0, 0.0),
        (4.0, 10.0, 0.0),
        (-10.0, 10.0, 0.0),
        (float("nan"), 10.0, 0.0),
    ],
)
def test_mra_values(pred: float, gt: float, expected: float) -> None:
    assert mra(pred, gt) == pytest.approx(expected)


def test_mra_matches_official_numpy_formula() -> None:
    rng = np.random.default_rng(0)
    conf = np.linspace(0.5, 0.95, int((0.95 - 0.5) / 0.05 + 2))
    for _ in range(300):
        gt = float(rng.uniform(0.1, 20))
        pred = float(gt * rng.uniform(0.3, 1.7))
        official = float((abs(pred - gt) / gt <= 1 - conf).mean())
        assert mra(pred, gt) == official


def test_mra_zero_ground_truth_is_guarded() -> None:
    assert mra(0.0, 0.0) == 1.0
    assert mra(0.1, 0.0) == 0.0


# -------------------------------------------------------------------------------------------------- masks/points
def _mask(tmp_path: Path, name: str = "m.png", value: int = 255) -> Path:
    m = np.zeros((480, 640), dtype=np.uint8)
    m[200:300, 300:400] = value  # rows = y, columns = x
    p = tmp_path / name
    Image.fromarray(m).save(p)
    return p


def test_points_in_mask_robopoint_rule(tmp_path: Path) -> None:
    mask = load_mask(_mask(tmp_path))
    assert mask.shape == (480, 640) and mask.dtype == np.uint8
    inside = (350 / 640, 250 / 480)
    assert points_in_mask([inside], mask) == 1.0
    assert points_in_mask([inside, (10 / 640, 10 / 480)], mask) == 0.5
    assert points_in_mask([(1.5, 0.5)], mask) == 0.0  # out of image counts 0
    assert points_in_mask([], mask) == 0.0
    # pixel coordinates exactly on the mask border
    assert pixel_points_in_mask([(300, 200), (399, 299)], mask) == 1.0
    assert pixel_points_in_mask([(400, 200), (299, 200)], mask) == 0.0


def test_continuous_versus_binarised_masks(tmp_path: Path) -> None:
    mask = load_mask(_mask(tmp_path, "soft.png", value=153))  # a JPEG-like soft value 0.6
    assert points_in_mask([(350 / 640, 250 / 480)], mask) == pytest.approx(0.6)
    assert points_in_mask([(350 / 640, 250 / 480)], mask, binarize=True) == 1.0


def test_load_mask_errors_and_cache(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match=r"missing\.png"):
        load_mask(tmp_path / "missing.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(MediaError, match=r"bad\.png"):
        load_mask(bad)
    p = _mask(tmp_path)
    assert load_mask(p) is load_mask(p)
    assert not load_mask(p).flags.writeable


def test_point_in_polygon_ray_casting() -> None:
    square = [(0.2, 0.2), (0.6, 0.2), (0.6, 0.6), (0.2, 0.6)]
    assert point_in_polygon(0.4, 0.4, square)
    assert not point_in_polygon(0.7, 0.4, square)
    concave = [(0, 0), (1, 0), (1, 1), (0.5, 0.4), (0, 1)]  # a notch from the top
    assert point_in_polygon(0.5, 0.2, concave)
    assert not point_in_polygon(0.5, 0.8, concave)
    assert not point_in_polygon(0.5, 0.5, [(0, 0), (1, 1)])


def test_bbox_iou() -> None:
    assert bbox_iou((0, 0, 1, 1), (0, 0, 1, 1)) == 1.0
    assert bbox_iou((0, 0, 2, 2), (1, 1, 3, 3)) == pytest.approx(1 / 7)
    assert bbox_iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0.0
    assert bbox_iou((1, 1, 0, 0), (0, 0, 1, 1)) == 1.0  # corner order does not matter
    assert bbox_iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0


def test_sequence_score_lcs_ratio() -> None:
    gt = ["pick up the red cup", "place it in the bowl", "close the drawer"]
    assert sequence_score(["Pick up the red cup.", "place it in the bowl", "Close the drawer"], gt) == 1.0
    assert sequence_score(gt[::-1], gt) == pytest.approx(1 / 3)
    assert sequence_score(gt[:2], gt) == pytest.approx(2 / 3)
    assert sequence_score([*gt, "wave"], gt) == pytest.approx(3 / 4)  # extra steps are penalised
    assert sequence_score([], gt) == 0.0


# ---------------------------------------------------------------------------------------------------- format
@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("<think>The cup is left of the bowl.</think><answer>B</answer>", True),
        ("<think>\nreasoning\n</think>\n<answer> B </answer>\n", True),
        ("<answer>B</answer>", True),
        ("B", False),
        ("<think>only thinking</think>", False),
        ("<think>a</think><answer>B</answer> trailing words", False),
        ("<answer>A</answer><answer>B</answer>", False),
        (None, False),
    ],
)
def test_format_ok(text: str | None, ok: bool) -> None:
    assert format_ok(text) is ok


# ---------------------------------------------------------------------------------------------- score_sample
MCQ = {"options": ["the red cup", "the blue bowl", "the green block", "the yellow plate"]}


@pytest.mark.parametrize(
    ("response", "value", "fmt"),
    [
        ("<think>The bowl is closest to the gripper.</think><answer>B</answer>", 1.0, True),
        ("<think>The bowl is closest. I might say A at first but no.</think><answer>(B)</answer>", 1.0, True),
        ("The answer is (B) the blue bowl.", 1.0, False),
        ("B. the blue bowl", 1.0, False),
        ("the blue bowl", 1.0, False),
        ("<think>It must be the red cup</think><answer>A</answer>", 0.0, True),
        ("<answer>E</answer>", 0.0, False),  # out of range: no option parsed
        ("", 0.0, False),
    ],
)
def test_score_mcq(response: str, value: float, fmt: bool) -> None:
    s = score_sample(_s("mcq", "B", **MCQ), response)
    assert isinstance(s, Score)
    assert s.value == value and s.success is (value == 1.0) and s.format_ok is fmt


def test_score_mcq_unparsed_has_reason() -> None:
    s = score_sample(_s("mcq", "B", **MCQ), "I cannot tell from this image.")
    assert s.parsed is None and s.reason and not s.format_ok


def test_score_yes_no() -> None:
    s = _s("yes_no", "no")
    assert score_sample(s, "<think>The block would fall.</think><answer>No</answer>").success
    assert score_sample(s, "No, it cannot be stacked there.").value == 1.0
    assert score_sample(s, "Yes.").value == 0.0
    r = score_sample(s, "Yes or no, hard to say.")
    assert r.value == 0.0 and r.parsed is None


def test_score_number_mra_with_units() -> None:
    s = _s("number", 50.0, metadata={"unit": "cm"})
    exact = score_sample(s, "<think>About half a metre.</think><answer>0.5 m</answer>")
    assert exact.value == 1.0 and exact.success and exact.format_ok
    close = score_sample(s, "The distance is approximately 56 cm.")
    assert close.value == pytest.approx(0.8) and close.success
    far = score_sample(s, "<answer>80</answer>")
    assert far.value == pytest.approx(0.0) and not far.success and far.format_ok


def test_score_count_exact_and_mra_variant() -> None:
    s = _s("count", 4)
    assert score_sample(s, "<answer>four</answer>").success
    assert score_sample(s, "There are 5 mugs on the table.").value == 0.0
    assert score_sample(s, "There are 5 mugs on the table.", count_metric="mra").value == pytest.approx(0.6)
    s2 = _s("count", 4, metadata={"count_metric": "mra"})
    assert score_sample(s2, "5").value == pytest.approx(0.6)


def test_score_points_with_mask_and_pixels(tmp_path: Path) -> None:
    mask = _mask(tmp_path)
    s = _s("points", [[0.55, 0.52]], metadata={"mask": str(mask), "image_size": [640, 480]})
    normalized = score_sample(s, "<think>free space right of the plate</think><answer>[(0.55, 0.52)]</answer>")
    assert normalized.value == 1.0 and normalized.format_ok
    # integers are pixels (the RoboPoint rule), given the image size
    assert score_sample(s, "[(350, 250)]").value == 1.0
    assert score_sample(s, "[(350, 250), (10, 10)]").value == 0.5
    assert score_sample(s, "(0.9, 0.9)").value == 0.0
    none = score_sample(s, "somewhere on the table")
    assert none.value == 0.0 and none.parsed is None and none.reason


def test_score_points_polygon_and_tolerance() -> None:
    poly = [[0.2, 0.2], [0.6, 0.2], [0.6, 0.6], [0.2, 0.6]]
    s = _s("points", [[0.4, 0.4]], metadata={"polygon": poly})
    assert score_sample(s, "[(0.3, 0.3), (0.5, 0.5)]").value == 1.0
    assert score_sample(s, "[(0.3, 0.3), (0.9, 0.9)]").value == 0.5
    t = _s("points", [[0.4, 0.4]])
    assert score_sample(t, "(0.42, 0.41)").success
    assert not score_sample(t, "(0.6, 0.6)").success


def test_score_bbox_iou() -> None:
    s = _s("bbox", [0.1, 0.1, 0.5, 0.5])
    assert score_sample(s, '<answer>{"bbox_2d": [0.1, 0.1, 0.5, 0.5]}</answer>').value == pytest.approx(1.0)
    half = score_sample(s, "[0.1, 0.1, 0.5, 0.3]")
    assert half.value == pytest.approx(0.5) and half.success
    assert not score_sample(s, "[0.6, 0.6, 0.9, 0.9]").success


def test_score_sequence() -> None:
    s = _s("sequence", ["open the drawer", "pick up the spoon", "close the drawer"])
    good = "<think>First open.</think><answer>1. Open the drawer\n2. Pick up the spoon\n3. Close the drawer</answer>"
    assert score_sample(s, good).value == 1.0
    swapped = score_sample(s, "pick up the spoon -> open the drawer -> close the drawer")
    assert swapped.value == pytest.approx(2 / 3) and swapped.success


def test_score_free_text() -> None:
    s = _s("free", "Red Cup")
    assert score_sample(s, "<answer>red cup.</answer>").success
    assert not score_sample(s, "the red cup").success
    assert score_sample(s, None).parsed is None


def test_score_never_raises_on_garbage() -> None:
    samples = [_s("mcq", "A", **MCQ), _s("yes_no", "yes"), _s("number", 3.0), _s("count", 2),
               _s("points", [[0.1, 0.1]]), _s("bbox", [0, 0, 1, 1]), _s("sequence", ["a"]), _s("free", "x")]
    for text in [None, "", "\x00" * 50, "<answer>", "</think>" * 3, "(" * 10_000, "1e999", "[[[]]]"]:
        for sample in samples:
            s = score_sample(sample, text)  # type: ignore[arg-type]
            assert 0.0 <= s.value <= 1.0


def test_score_action_type_and_object() -> None:
    s = _s("action", {"action": {"type": "skill", "name": "pick", "object": "red_block"}})
    good = '<think>The red block is free.</think><answer>{"action": {"type": "skill", "name": "pick", ' \
           '"object": "red_block"}}</answer>'
    r = score_sample(s, good)
    assert r.success and r.format_ok
    assert not score_sample(s, '{"action": {"type": "skill", "name": "pick", "object": "blue_block"}}').success
    assert not score_sample(s, '{"action": {"type": "done"}}').success
    bad = score_sample(s, "I would pick it up")
    assert bad.parsed is None and bad.reason
    pt = _s("action", {"action": {"type": "point", "x": 0.4, "y": 0.6, "then": "grasp"}})
    assert score_sample(pt, '{"action": {"type": "point", "x": 0.41, "y": 0.62, "then": "grasp"}}').success
