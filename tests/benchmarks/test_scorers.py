"""Official scoring rules with realistic model outputs, including the traps of benchmarks.md section 6."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.doc import Doc
from benchmarks.scoring import Row, make_scorer
from benchmarks.scoring.choice import mvbench_extract, phyx_mc_match
from benchmarks.scoring.normalize import flageval_choice, flageval_normalize, word_to_num
from benchmarks.scoring.pointing import mask_accuracy, point_array, targets_accuracy, text_to_targets
from benchmarks.scoring.spatial import robospatial_first_point, robospatial_point_in_polygon
from dppo_embodied.answer_text import strip_think
from tests.benchmarks.fixtures import mask_image


def _doc(target, subtask=None, **meta) -> Doc:
    return Doc(id="x", task="t", prompt="", target=target, subtask=subtask, meta=meta)


# ------------------------------------------------------------------------------------------ remove_think
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<think>It is B... or A?</think>A", "A"),
        ("<thought>long reasoning</thought>A", "A"),
        ("A: Beijing", "A: Beijing"),
        ("<think>x</think><answer> (C) </answer>", "(C)"),
        ("<answer>B</answer> and later <answer>C</answer>", "B"),  # Pelican takes the FIRST answer block
        ("so the answer is \\boxed{\\text{D}}.", "D"),
        ("<think>a</think>b</think>C", "b</think>C"),  # only the first </think> is cut
        (None, ""),
    ],
)
def test_strip_think_is_pelicans(text, expected) -> None:
    assert strip_think(text) == expected


# ----------------------------------------------------------------------------------------------- MVBench
@pytest.mark.parametrize(
    ("pred", "letter"),
    [("B", "B"), ("(B)", "B"), ("B. close the door", "B"), ("Best option: (C)", "C"), ("b", "B"),
     ("a person opens the door", "A")],  # the article "a" reads as option A: a known lmms-eval quirk
)
def test_mvbench_extraction(pred: str, letter: str) -> None:
    assert mvbench_extract(pred) == letter


def test_mvbench_empty_answers_excluded_and_variants() -> None:
    rows_resp = [("B", "B"), ("", "A"), ("<think>hmm</think>", "C"), ("A", "A")]
    for empty, expected in (("drop", 100.0 * 2 / 2), ("wrong", 100.0 * 2 / 4), ("correct", 100.0)):
        sc = make_scorer("mvbench", "mvbench", {"empty": empty})
        rows = []
        for i, (resp, gt) in enumerate(rows_resp):
            s = sc.score(_doc(gt, "action_sequence"), resp)
            rows.append(Row(str(i), "action_sequence", s.score))
        res = sc.aggregate(rows)
        assert res.overall == pytest.approx(expected)
    assert res.n_excluded == 0


def test_mvbench_overall_is_mean_of_tasks() -> None:
    sc = make_scorer("mvbench", "mvbench")
    rows = [Row("a", "action_count", 1.0), Row("b", "action_count", 0.0), Row("c", "action_count", 1.0),
            Row("d", "moving_count", 1.0)]
    res = sc.aggregate(rows)
    assert res.subtasks == {"mvbench_action_count": pytest.approx(200 / 3), "mvbench_moving_count": 100.0}
    assert res.overall == pytest.approx((200 / 3 + 100) / 2)


# ----------------------------------------------------------------------------------------- letter rules
def test_cosmos_first_capital_anywhere() -> None:
    sc = make_scorer("cosmos", "cosmos")
    assert sc.score(_doc("B"), "B").score == 1.0
    assert sc.score(_doc("B"), "The answer is B").score == 0.0  # "T" is the first capital
    assert sc.score(_doc("b"), "<think>The A option is wrong</think>B.").score == 1.0


def test_erqa_first_character_and_vlmevalkit_collision() -> None:
    pel, vlm = make_scorer("erqa", "erqa"), make_scorer("erqa", "erqa", {"mode": "vlmevalkit"})
    assert pel.score(_doc("B"), "B.").score == 1.0
    assert vlm.score(_doc("B"), "B.").score == 0.0  # ERQADataset: full-string exact match
    assert pel.score(_doc("B"), "b) to the right").score == 1.0
    assert pel.score(_doc("B"), "The answer is B").score == 0.0
    assert pel.score(_doc("B"), ".").score == 0.0  # the official code would crash here


def test_omni_spatial_first_character() -> None:
    sc = make_scorer("omni_spatial", "omni_spatial")
    assert sc.score(_doc("C"), " c. the pen").score == 1.0
    assert sc.score(_doc("C"), "Answer: C").score == 0.0
    re_mode = make_scorer("omni_spatial", "omni_spatial", {"eval_type": "re"})
    assert re_mode.score(_doc("C"), "I think... Answer: C").score == 1.0
    assert re_mode.score(_doc("A"), "no idea").score == 1.0  # the official fallback is "A"


@pytest.mark.parametrize(
    ("text", "letter"),
    [("The answer is B.", "B"), ("C. the red chair", "C"), ("B", "B"), ("Answer: (D)", "D"),
     ("The object is the lamp, so A", "A"),
     # "[INST]" is a character class in FlagEval's code: every I, N, S, T is deleted first
     ("It is B", "B"), ("Option B is correct", "OB")],  # "O" survives: scored wrong, officially
)
def test_flageval_choice(text: str, letter: str) -> None:
    assert flageval_choice(text) == letter


def test_emb_spatial_pelican_vs_lmms_eval() -> None:
    pel = make_scorer("emb_spatial", "emb_spatial_bench")
    lmms = make_scorer("emb_spatial", "emb_spatial_bench", {"mode": "lmms_eval"})
    assert pel.score(_doc("A"), "The answer is (A)").score == 1.0
    assert lmms.score(_doc("A"), "The answer is (A)").score == 0.0  # start-anchored: reads "T"


def test_phyx_quick_extract_rule() -> None:
    assert phyx_mc_match("The correct answer is B.", "B") == (True, "B")
    assert phyx_mc_match("After computing, C: 4 m/s", "C") == (True, "C")
    assert phyx_mc_match("So it must be D", "D") == (True, "D")
    assert phyx_mc_match("**B** is right", "B")[0]
    # the keyword rule grabs the first A-D after "answer", even inside words of the official phrasing
    assert not phyx_mc_match("My answer: Definitely B", "B")[0]
    sc = make_scorer("phyx_mc", "phyx_mini_mc")
    # the official MC scorer does not strip reasoning: "A" in the thinking wins
    assert sc.score(_doc("B"), "<think>Option A fails</think><answer>B</answer>").score == 0.0
    stripped = make_scorer("phyx_mc", "phyx_mini_mc", {"strip_think": True})
    assert stripped.score(_doc("B"), "<think>Option A fails</think><answer>B</answer>").score == 1.0


# ------------------------------------------------------------------------------------------------ EgoSchema
OPTS = [f"{c}. option {c.lower()}" for c in "ABCDE"]


def test_egoschema_parser_and_seeded_fallback() -> None:
    sc = make_scorer("egoschema", "egoschema_subset")
    assert sc.score(_doc("1", options=OPTS), "B.").score == 1.0
    assert sc.score(_doc("2", options=OPTS), "(C) because c cleans").score == 1.0
    # earliest of several candidates wins
    assert sc.score(_doc("0", options=OPTS), "A. not B.").parsed == "A"
    # unparsable short answers: a seeded random letter, identical after reset
    sc.reset()
    first = [sc.score(_doc("0", options=OPTS), "no idea").parsed for _ in range(6)]
    sc.reset()
    again = [sc.score(_doc("0", options=OPTS), "no idea").parsed for _ in range(6)]
    assert first == again and len(set(first)) > 1
    other = make_scorer("egoschema", "egoschema_subset", {"seed": 1})
    assert [other.score(_doc("0", options=OPTS), "no idea").parsed for _ in range(6)] != first
    hidden = sc.score(_doc(None, options=OPTS), "D")
    assert hidden.score is None and hidden.extra["index"] == 3


# ---------------------------------------------------------------------------------------------------- BLINK
def test_blink_official_rule_and_judge_fallback() -> None:
    sc = make_scorer("blink", "blink")
    d = _doc("(B)", "counting", choices=["2", "3"])
    assert sc.score(d, "B").score == 1.0
    assert sc.score(d, "(B)").score == 1.0
    assert sc.score(d, "I count three, so (B)").score == 1.0
    two = sc.score(d, "(A) seems wrong.\n\nThe answer is (B)")
    assert two.score == 1.0 and not two.extra["needs_judge"]  # last paragraph has exactly one choice
    judged = sc.score(d, "There are 3 objects.\nAnswer: B")
    assert judged.extra["needs_judge"] and judged.score == 1.0
    fail = make_scorer("blink", "blink", {"judge_fallback": "fail"})
    assert fail.score(d, "There are 3 objects.\nAnswer: B").score == 0.0


def test_blink_macro_versus_micro() -> None:
    rows = [Row("a", "counting", 1.0), Row("b", "counting", 1.0), Row("c", "counting", 1.0),
            Row("d", "jigsaw", 0.0)]
    macro = make_scorer("blink", "blink").aggregate(rows)
    micro = make_scorer("blink", "blink", {"aggregation": "micro"}).aggregate(rows)
    assert macro.overall == pytest.approx(50.0)
    assert micro.overall == pytest.approx(75.0)
    assert macro.details["micro"] == pytest.approx(75.0)


# -------------------------------------------------------------------------------------------------- pointing
def test_text_to_targets_robopoint_rule() -> None:
    assert text_to_targets("[(0.5, 0.5), (350, 250)]", 640, 480) == [(320, 240), (350, 250)]  # decimals are
    # normalised, integers are pixels
    assert text_to_targets("(300, 200, 302, 201)", 640, 480) == [(300, 200, 302, 201)]  # a box, not expanded
    assert text_to_targets("(0.5, 0.5, 0.75, 1.0)", 640, 480) == [(320, 240, 480, 480)]
    assert text_to_targets("[0.5, 0.5] (1, 2, 3)", 640, 480, "pelican") == [(320, 240)]  # 3-tuples are ignored


def test_boxes_count_every_pixel_without_expanding_them() -> None:
    mask = mask_image(value=153).astype(float) / 255.0
    # RoboPoint: the box (300, 200)-(302, 201) is the pixels (300, 200) and (301, 200), plus the point outside
    assert targets_accuracy(text_to_targets("(300, 200, 302, 201), (10, 10)", 640, 480), mask) == \
        pytest.approx(2 * 0.6 / 3)
    # numpy slice rules: negative ends count from the right edge, ends past the image are clipped
    assert targets_accuracy([(-640, -480, 10_000, 10_000)], mask) == pytest.approx(0.6 * 100 * 100 / (640 * 480))
    assert targets_accuracy([(5, 5, 5, 9)], mask) == 0.0  # an empty box adds no pixel


def test_integers_are_pixels_trap() -> None:
    mask = mask_image() / 255.0
    official = make_scorer("where2place", "where2place")
    lmms = make_scorer("where2place", "where2place", {"mode": "lmms_eval"})
    d = _doc(mask_image(), image_size=(640, 480))
    assert official.score(d, "[(350, 250)]").score == 1.0
    assert official.score(d, "[(350, 250), (10, 10)]").score == 0.5
    assert lmms.score(d, "[(350, 250)]").score == 0.0
    assert mask_accuracy(point_array(text_to_targets("(350, 250)", 640, 480)), mask) == 1.0


def test_continuous_versus_binarised_masks() -> None:
    soft = mask_image(value=153)
    d = _doc(soft, image_size=(640, 480))
    assert make_scorer("where2place", "where2place").score(d, "(0.55, 0.52)").score == pytest.approx(0.6)
    assert make_scorer("where2place", "where2place", {"mode": "lmms_eval"}).score(d, "(0.55, 0.52)").score == 1.0
    assert make_scorer("ref_spatial", "ref_spatial_bench").score(d, "(0.55, 0.52)").score == 1.0  # binarised


def test_where2place_invalid_answers_excluded_in_pelican_mode() -> None:
    d = _doc(mask_image(), image_size=(640, 480))
    pel = make_scorer("where2place", "where2place").score(d, "[[350, 250], [10, 10]]")
    assert pel.score is None  # Pelican's nested-list pattern cannot be read: invalid, excluded
    robo = make_scorer("where2place", "where2place", {"mode": "robopoint"}).score(d, "[[350, 250], [10, 10]]")
    assert robo.score == 0.0  # RoboPoint: no parenthesised tuple -> 0
    assert make_scorer("where2place", "where2place").score(d, "no idea").score == 0.0


def test_ref_spatial_variants() -> None:
    d = _doc(mask_image(), "location")
    assert make_scorer("ref_spatial", "r").score(d, "(350, 250), (10, 10)").score == 0.5
    assert make_scorer("ref_spatial", "r", {"mode": "vlmevalkit"}).score(d, "(350, 250), (10, 10)").score == 1.0
    assert make_scorer("ref_spatial", "r", {"mode": "lmms_eval"}).score(d, "(350, 250)").score == 0.0


def test_robospatial_first_point_polygon_and_last_line() -> None:
    poly = "[(0.2, 0.2), (0.6, 0.25), (0.55, 0.6), (0.15, 0.55)]"
    sc = make_scorer("robo_spatial", "robo_spatial")
    d = _doc(poly, "context")
    assert sc.score(d, "The mug is left.\nAnswer: [(0.4, 0.4), (0.9, 0.9)]").score == 1.0
    assert sc.score(d, "Answer: [(0.9, 0.9), (0.4, 0.4)]").score == 0.0  # only the FIRST point counts
    assert sc.score(d, "Answer: [(0.4, 0.4)]\nHope this helps").score == 0.0  # only the LAST line is read
    yn = _doc("yes", "compatibility")
    assert sc.score(yn, "It fits.\nAnswer: Yes.").score == 1.0
    assert sc.score(yn, "Answer: yes\nBut maybe not").score == 0.0
    assert make_scorer("robo_spatial", "r", {"mode": "vlmevalkit"}).score(yn, "Yes, it fits").score == 1.0
    assert robospatial_first_point("Answer: [[0.3, 0.4], [0.5, 0.5]]") == (0.3, 0.4)


def test_robospatial_official_vertical_edge_quirk() -> None:
    square = [(0.2, 0.2), (0.6, 0.2), (0.6, 0.6), (0.2, 0.6)]
    # every vertical edge at the point's height flips: an axis-aligned square contains nothing officially
    assert not robospatial_point_in_polygon(0.4, 0.4, square)
    tilted = [(0.2, 0.2), (0.6, 0.25), (0.55, 0.6), (0.15, 0.55)]
    assert robospatial_point_in_polygon(0.4, 0.4, tilted)
    assert not robospatial_point_in_polygon(0.9, 0.4, tilted)


# -------------------------------------------------------------------------------------------------- VSI-Bench
def test_word_to_num_matches_word2number() -> None:
    assert word_to_num("three") == 3
    assert word_to_num("twenty-five chairs") == 25
    assert word_to_num("two hundred and five") == 205
    assert word_to_num("one point five") == pytest.approx(1.5)
    with pytest.raises(ValueError):
        word_to_num("many")


def test_vsi_parsing_and_mra() -> None:
    sc = make_scorer("vsibench", "vsibench")
    mc = _doc("B", question_type="route_planning")
    assert sc.score(mc, "B. turn left").score == 1.0
    assert sc.score(mc, "(B)").score == 0.0  # text before the first space is "(B)"
    assert sc.score(mc, "The answer is B").score == 0.0
    num = _doc("4", question_type="object_counting")
    assert sc.score(num, "4").score == 1.0
    assert sc.score(num, "Four").score == 1.0
    assert sc.score(num, "I see 5 chairs, no, 4").score == pytest.approx(0.6)  # the FIRST number
    last = make_scorer("vsibench", "vsibench", {"numeric": "last"})
    assert last.score(num, "I see 5 chairs, no, 4").score == 1.0
    assert sc.score(num, "   ").score == 0.0


def test_vsi_overall_is_unweighted_mean_of_tasks() -> None:
    sc = make_scorer("vsibench", "vsibench")
    rows = [Row("1", None, 1.0, meta={"question_type": "object_counting"}),
            Row("2", None, 0.0, meta={"question_type": "object_rel_direction_easy"}),
            Row("3", None, 1.0, meta={"question_type": "object_rel_direction_hard"}),
            Row("4", None, 1.0, meta={"question_type": "object_rel_direction_hard"}),
            Row("5", None, 0.0, meta={"question_type": "route_planning"}),
            Row("6", None, 0.0, meta={"question_type": "route_planning"}),
            Row("7", None, 0.0, meta={"question_type": "route_planning"})]
    res = sc.aggregate(rows)
    # tasks: counting 1.0, rel_direction mean(0.0, 1.0) = 0.5, route 0.0 -> 50.0 (sample-weighted would be 42.9)
    assert res.subtasks["vsibench_object_rel_direction"] == pytest.approx(50.0)
    assert res.overall == pytest.approx(50.0)


# ------------------------------------------------------------------------------------------------ FlagEval
def test_flageval_normalize() -> None:
    assert flageval_normalize("Answer: [(0.1, 0.2)]") == "[(0.1, 0.2)]"
    assert flageval_normalize("The answer is 3cm.") == "3"
    assert flageval_normalize("No.") == "No"


def test_egoplan_extractor() -> None:
    sc = make_scorer("egoplan", "egoplan_bench2")
    assert sc.score(_doc("B"), "The answer is B.").score == 1.0
    assert sc.score(_doc("B"), "Answer: B").parsed == "A"  # the first A-D anywhere: the "A" of "Answer"
    long_answer = "I would probably go to the sink and wash my hands before cooking the meal"
    assert sc.score(_doc("A"), long_answer).parsed == ""


def test_mask_accuracy_numpy_semantics() -> None:
    mask = np.zeros((4, 4))
    mask[1, 2] = 1.0
    assert mask_accuracy(np.array([[2, 1], [9, 9], [-1, 0]]), mask) == pytest.approx(1 / 3)
    assert mask_accuracy(np.array([]), mask) == 0.0


def test_blink_optional_judge_only_when_configured() -> None:
    from dppo_embodied.errors import ConfigError
    from tests.helpers.fake_openai_server import FakeOpenAIServer, last_user_text

    with pytest.raises(ConfigError, match="judge_base_url"):
        make_scorer("blink", "blink", {"judge_fallback": "judge"})
    d = _doc("(B)", "counting", choices=["2", "3"], question="How many cups?")
    with FakeOpenAIServer(responder=lambda req: "Your output: (B)" if "Select from" in last_user_text(req)
                          else "?") as srv:
        sc = make_scorer("blink", "blink", {"judge_fallback": "judge", "judge_base_url": srv.url})
        assert sc.score(d, "B").score == 1.0 and len(srv.chat_requests) == 0  # the rule decides: no judge call
        judged = sc.score(d, "There are three cups.")
        assert judged.score == 1.0 and judged.extra["needs_judge"]
        prompt = srv.chat_requests[0]["json"]["messages"][0]["content"]
        assert "Question: How many cups?\nSelect from the following choices?\nOptions: (A) 2\n(B) 3\n(Z) Failed\n" \
               "Answer: There are three cups.\nYour output: " in prompt
