"""Pathological model outputs through every scorer (issue 9), and the linear rewrites against the official rules.

Every registered scorer configuration (every task in ``benchmarks/tasks``, every declared variant, every answer
type of ``score_sample``) scores every input of :func:`tests.benchmarks.pathological.corpus` without raising,
within a safety bound per call: 1 s of CPU time and 50 MiB of traced memory (the quadratic regexes took 12 s to
over 100 s on the issue's inputs, the box expansion 1.1 GB). CPU time of the calling thread, not wall time, so
a busy machine does not make the bound flaky. The rewritten extractors are checked equal to the official
regexes on random strings over the alphabets their quirks live in.
"""

from __future__ import annotations

import json
import random
import re
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from benchmarks.cli import main
from benchmarks.doc import Doc
from benchmarks.scoring import SampleScore, make_scorer
from benchmarks.scoring.choice import _mv_option, phyx_mc_match
from benchmarks.scoring.normalize import _unwrap_text
from benchmarks.scoring.pointing import ANY_TUPLES, NESTED_LISTS, PAREN_TUPLES, targets_accuracy, text_to_targets
from benchmarks.scoring.spatial import _first_bracketed, robospatial_first_point
from dppo_embodied.answer_text import MAX_RESPONSE_CHARS, strip_think
from dppo_embodied.metrics import format_ok
from tests.benchmarks import fixtures as fx
from tests.benchmarks import pathological as patho

CPU_LIMIT_S = 1.0
MEMORY_LIMIT_MB = 50.0
ISSUE_INPUTS = [name for name in patho.corpus() if name.startswith("issue_")]


@pytest.fixture(scope="module")
def mask_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from PIL import Image

    path = tmp_path_factory.mktemp("mask") / "mask.png"
    Image.fromarray(patho._mask()).save(path)
    return path


def _check_bounded(case: patho.Case, inputs: list[str]) -> None:
    texts = patho.corpus()
    for name in inputs:
        t0 = time.thread_time()
        patho.run_case(case, texts[name])  # raises if the scorer raises
        cpu = time.thread_time() - t0
        tracemalloc.start()
        try:
            patho.run_case(case, texts[name])
            peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
        finally:
            tracemalloc.stop()
        assert cpu <= CPU_LIMIT_S, f"{case.name} on {name}: {cpu:.2f} s of CPU (bound {CPU_LIMIT_S} s)"
        assert peak_mb <= MEMORY_LIMIT_MB, f"{case.name} on {name}: {peak_mb:.1f} MiB (bound {MEMORY_LIMIT_MB})"


def _case_names() -> list[str]:
    return [c.name for c in patho.cases(Path("mask.png"))]


def _case(name: str, mask_path: Path) -> patho.Case:
    return next(c for c in patho.cases(mask_path) if c.name == name)


def test_corpus_covers_every_task_and_answer_type() -> None:
    from dppo_embodied.types import AnswerType

    cases = patho.cases(Path("mask.png"))
    covered = {(c.scorer, repr(sorted(c.options.items()))) for c in cases}
    for task, (scorer, options) in patho.task_scorers().items():  # every task's scorer with its own options
        assert (scorer, repr(sorted(options.items()))) in covered, task
    types = {c.doc.target.answer_type for c in cases if c.scorer == "sample_metrics"}
    assert types == set(AnswerType)
    assert len(ISSUE_INPUTS) >= 10


@pytest.mark.timeout(300)
@pytest.mark.parametrize("case_name", _case_names())
def test_issue_inputs_are_bounded_in_every_scorer(case_name: str, mask_path: Path) -> None:
    _check_bounded(_case(case_name, mask_path), ISSUE_INPUTS)


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("case_name", _case_names())
def test_whole_corpus_is_bounded_in_every_scorer(case_name: str, mask_path: Path) -> None:
    _check_bounded(_case(case_name, mask_path), [n for n in patho.corpus() if n not in ISSUE_INPUTS])


# ------------------------------------------------------------------------------ the issue's inputs, by value
def test_issue_inputs_score_as_the_official_rule_reads_them() -> None:
    texts = patho.corpus()
    mask = patho._mask()
    w2p = make_scorer("where2place", "where2place")
    doc = Doc(id="p", task="where2place", prompt="", target=mask, meta={"image_size": (640, 480)})
    # 60 full-image boxes: every pixel counts once per box; the mask covers 100 x 100 at 255 and 50 x 50 at 153
    expected = (100 * 100 * 1.0 + 50 * 50 * 0.6) / (640 * 480)
    assert w2p.score(doc, texts["issue_60_boxes"]).score == pytest.approx(expected)
    assert w2p.score(doc, texts["issue_60_norm_boxes"]).score == pytest.approx(expected)
    # a 400-digit decimal coordinate is no finite point: an invalid answer (excluded under Pelican), not a crash
    bad = w2p.score(doc, texts["issue_400_digit_decimal"])
    assert bad.score is None and "finite" in bad.extra["invalid"]
    assert robospatial_first_point("[(" + "9" * 400 + ", -1)]") is None  # OverflowError officially
    assert robospatial_first_point("[(-0.5, 0.25)]") == (-0.5, 0.25)  # the literal path still reads points
    assert phyx_mc_match(texts["issue_phyx_keywords_x5000"], "B") == (False, "")
    assert phyx_mc_match("correct answer option " * 5000 + "B", "B") == (True, "B")
    assert strip_think(texts["issue_answer_x30000"]) == texts["issue_answer_x30000"]  # no closed block


def test_tail_bound_keeps_the_end_of_an_over_long_response() -> None:
    long = "x" * (MAX_RESPONSE_CHARS + 10) + "<answer>B</answer>"
    assert strip_think(long) == "B"
    assert make_scorer("erqa", "erqa").score(Doc(id="p", task="erqa", prompt="", target="B"), long).score == 1.0
    # below the bound the official rule reads the FIRST block; past it only the tail is read
    assert strip_think("<answer>A</answer>" + "x" * MAX_RESPONSE_CHARS + "<answer>B</answer>") == "B"


# --------------------------------------------------------------------- equal to the official regexes
OFFICIAL_NUM = r"[-+]?\d+\.?\d*"
OFFICIAL = {
    "paren": re.compile(rf"\(({OFFICIAL_NUM}(?:,\s*{OFFICIAL_NUM})*?)\)"),
    "any": re.compile(rf"[\[\(]({OFFICIAL_NUM}(?:\s*,\s*{OFFICIAL_NUM})*?)[\]\)]"),
    "nested": re.compile(rf"\[(?:\[{OFFICIAL_NUM}(?:\s*,\s*{OFFICIAL_NUM})*?\](?:\s*,\s*\[{OFFICIAL_NUM}"
                         rf"(?:\s*,\s*{OFFICIAL_NUM})*?\])*?)\]"),
}
_CUT_THINK = re.compile(r"^.*?</think>", re.S)
_CUT_THOUGHT = re.compile(r"^.*?</thought>", re.S)
_FIRST_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.S | re.I)


def _official_remove_think(text: str) -> str:
    """Pelican's cot_utils.remove_think, regex for regex."""
    text = _CUT_THOUGHT.sub("", _CUT_THINK.sub("", text))
    m = _FIRST_ANSWER.search(text)
    if m:
        return m.group(1).strip()
    idx = max(text.rfind("\\boxed"), -1)
    if idx < 0:
        idx = text.rfind("\\fbox")
    if idx >= 0:
        depth = 0
        for i in range(idx, len(text)):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if text[i] == "}" and depth == 0:
                return text[idx: i + 1].replace("\\boxed{", "").replace("}", "").replace("\\text{", "").strip()
    return text.strip()


def _strings(alphabet: list[str], n: int, seed: int, max_len: int = 10) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, max_len))) for _ in range(n)]


def test_strip_think_equals_the_official_regexes() -> None:
    alphabet = ["<answer>", "</answer>", "<ANSWER>", "</Answer>", "<anſwer>", "</think>", "</thought>", "<think>",
                "\\boxed{", "\\text{", "}", "{", "B", " ", "\n", "<", ">", "answer"]
    for s in _strings(alphabet, 20_000, seed=0):
        assert strip_think(s) == _official_remove_think(s), repr(s)


def test_format_ok_equals_the_regex() -> None:
    fmt = re.compile(r"\s*(?:<think>.*?</think>\s*)?<answer>(.*?)</answer>\s*", re.S)
    alphabet = ["<think>", "</think>", "<answer>", "</answer>", " ", "\n", "x", "\x1c", "\u3000", "<", "think>"]
    for s in _strings(alphabet, 20_000, seed=1, max_len=7):
        assert format_ok(s) == (fmt.fullmatch(s) is not None and s.count("<answer>") == 1), repr(s)


def test_point_patterns_equal_the_official_ones() -> None:
    alphabet = ["(", ")", "[", "]", "1", "23", ".", "-", "+", ",", " ", "\n", "0.5", "[[", "]]", ", ", "x"]
    for s in _strings(alphabet, 30_000, seed=2, max_len=14):
        assert PAREN_TUPLES.findall(s) == OFFICIAL["paren"].findall(s), repr(s)
        assert ANY_TUPLES.findall(s) == OFFICIAL["any"].findall(s), repr(s)
        assert (NESTED_LISTS.search(s) is None) == (OFFICIAL["nested"].search(s) is None), repr(s)


def test_small_regex_rewrites_equal_the_official_ones() -> None:
    mv = re.compile(r"^([A-E])\.\s*(.+)$", re.I)
    for s in _strings(["A", ".", "a", "e", "F", " ", "\n", "\t", "x", "\u00a0", "B.", "\n\n"], 20_000, seed=3):
        m = mv.match(s)
        assert _mv_option(s) == (m.group(1).upper() if m else None), repr(s)
    text = re.compile(r"\\text\s*\{(.*?)\}")
    for s in _strings(["\\text{", "\\text {", "}", "\n", "a", "\\tex", "{", " ", "\\text\n{"], 20_000, seed=4):
        assert _unwrap_text(s) == text.sub(r"\1", s), repr(s)
    brackets = re.compile(r"\[(.*?)\]", re.S)
    for s in _strings(["[", "]", "a", "\n", "(1, 2)"], 5_000, seed=5):
        m = brackets.search(s)
        assert _first_bracketed(s) == (m.group(1) if m else None), repr(s)
    keyword = re.compile(r"\b(?:correct|answer|option|Answer|Option|Correct)\b[\s\S]*?([A-D])")
    for s in _strings(["correct", "answer", "Option", "A", "B", "E", "x", " ", "_", "answers", ":"], 5_000, seed=6):
        m = keyword.search(s)
        gt = "Z"  # never matched, so the extraction itself is compared
        if m:
            assert phyx_mc_match(s, gt)[1] == m.group(1), repr(s)


def test_boxes_score_as_the_official_pixel_expansion() -> None:
    """RoboPoint expands each box into its pixels (numpy slice rules): same mean, no per-pixel lists."""
    rng = np.random.default_rng(7)
    mask = rng.integers(0, 256, size=(48, 64)).astype(np.uint8) / 255.0
    for _ in range(300):
        items = [tuple(int(v) for v in rng.integers(-80, 90, size=4)) for _ in range(rng.integers(1, 4))]
        items += [tuple(int(v) for v in rng.integers(-5, 70, size=2)) for _ in range(rng.integers(0, 3))]
        pixels: list[tuple[int, int]] = []
        for t in items:
            if len(t) == 2:
                pixels.append(t)
            else:
                box = np.zeros((48, 64), dtype=bool)
                box[t[1]:t[3], t[0]:t[2]] = 1
                ys, xs = np.where(box)
                pixels += list(zip(xs.tolist(), ys.tolist(), strict=True))
        pts = np.array(pixels)
        if len(pts) == 0:
            expected = 0.0
        else:
            ok = (pts[:, 0] >= 0) & (pts[:, 0] < 64) & (pts[:, 1] >= 0) & (pts[:, 1] < 48)
            expected = float(np.concatenate([mask[pts[ok, 1], pts[ok, 0]], np.zeros(len(pts) - ok.sum())]).mean())
        assert targets_accuracy(items, mask) == pytest.approx(expected, abs=1e-12), items


def test_text_to_targets_reads_pelican_nested_lists_as_invalid() -> None:
    with pytest.raises(ValueError, match="nested"):
        text_to_targets("[[350, 250], [10, 10]]", 640, 480, "pelican")
    assert text_to_targets("[[350, 250], [10, 10]]", 640, 480) == []  # RoboPoint: no parenthesised tuple


# ------------------------------------------------------------------------------- `dppo eval score` end to end
def test_score_survives_every_corpus_input(tmp_path: Path) -> None:
    """The whole corpus as one responses file (plus NaN/infinite parses and a lone surrogate): exit 0, every
    sample written, each scored in [0, 1] or failed with its reason."""
    root = fx.make_vsibench(tmp_path / "ds")
    texts = [*patho.corpus().values(), "nan", "inf", "\ud800 4"]
    rows = [{"id": str(1 + i % 6), "response": t} for i, t in enumerate(texts)]
    for start in range(0, len(rows), 6):
        resp = tmp_path / f"r{start}.jsonl"
        resp.write_text("".join(json.dumps(r) + "\n" for r in rows[start: start + 6]), encoding="utf-8")
        out = tmp_path / f"out{start}"
        assert main(["score", "--task", "vsibench", "--data", f"vsibench={root}", "--responses", str(resp),
                     "--out", str(out), "--allow-missing"]) == 0  # the last file covers some of the ids
        lines = (out / "vsibench" / "samples.jsonl").read_text(encoding="utf-8").split("\n")[:-1]  # not
        # splitlines: U+2028 and friends inside a response are text, not line ends
        recs = [json.loads(x) for x in lines]
        assert len(recs) == len(rows[start: start + 6])
        assert all(0.0 <= r["score"] <= 1.0 for r in recs)
        for r, sent in zip(recs, rows[start: start + 6], strict=True):
            assert r["response"] == sent["response"]  # written losslessly, lone surrogates included


def test_score_with_a_non_utf8_line_counts_it_malformed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = fx.make_erqa(tmp_path / "ds")
    resp = tmp_path / "r.jsonl"
    resp.write_bytes(b'{"id": "erqa/0", "response": "A"}\n{"id": "erqa/1", "response": "B\xff"}\n'
                     b'{"id": "erqa/2", "response": "C"}\n' + b"[" * 100_000 + b"\n")
    assert main(["score", "--task", "erqa", "--data", f"erqa={root}", "--responses", str(resp),
                 "--out", str(tmp_path / "out")]) == 0
    details = json.loads((tmp_path / "out" / "results.json").read_text())["tasks"]["erqa"]["details"]
    assert details["malformed_lines"] == 2 and details["missing_responses"] == 1
    assert "line 2: not UTF-8" in caplog.text and "line 4: not JSON" in caplog.text


def test_a_scorer_exception_fails_that_sample_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The one guard in the scoring loop: whatever a scorer raises, that sample is scored 0 with the reason."""
    from benchmarks.scoring.choice import ERQAScorer

    real = ERQAScorer.score

    def flaky(self: ERQAScorer, doc: Doc, response: str) -> SampleScore:
        if response == "boom":
            raise OverflowError("int too large to convert to float")
        return real(self, doc, response)

    monkeypatch.setattr(ERQAScorer, "score", flaky)
    root = fx.make_erqa(tmp_path / "ds")
    resp = fx.write_jsonl(tmp_path / "r.jsonl", [{"id": "erqa/0", "response": "A"},
                                                {"id": "erqa/1", "response": "boom"}])
    assert main(["score", "--task", "erqa", "--data", f"erqa={root}", "--responses", str(resp),
                 "--out", str(tmp_path / "out"), "--allow-missing"]) == 0
    entry = json.loads((tmp_path / "out" / "results.json").read_text())["tasks"]["erqa"]
    assert entry["n"] == 2 and entry["n_failed"] == 1 and entry["overall"] == 50.0
    recs = {json.loads(x)["id"]: json.loads(x) for x in (tmp_path / "out" / "erqa" / "samples.jsonl").read_text()
            .splitlines()}
    assert recs["erqa/1"]["score"] == 0.0 and "OverflowError" in recs["erqa/1"]["error"]
