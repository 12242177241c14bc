"""A corpus of pathological model outputs and every scorer configuration they must go through.

Used by ``tests/benchmarks/test_pathological.py`` (a time and memory bound per call) and runnable as a script
to measure the figures of ``docs/performance.md``: every (scorer configuration, input) pair is run in a forked
child with a wall-clock limit, so a catastrophic regex is reported as a hang instead of blocking the run::

    .venv/bin/python -m tests.benchmarks.pathological [--limit-s 10] [--only NAME,...] [--json OUT]

Each input is sized around the issue's 240 kB example (and one well past the tail bound of
:data:`dppo_embodied.answer_text.MAX_RESPONSE_CHARS`), so a quadratic step costs seconds to minutes.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.doc import Doc
from benchmarks.scoring import SCORERS, make_scorer
from dppo_embodied.types import AnswerType, EmbodiedSample

SIZE = 240_000
"""Target length of the repeated-token inputs (the issue's 240 kB response)."""


def _rep(token: str, size: int = SIZE) -> str:
    return token * max(1, size // max(1, len(token)))


def _boxes(n: int, box: str = "(0, 0, 640, 480)") -> str:
    return "[" + ", ".join([box] * n) + "]"


@functools.lru_cache(maxsize=1)
def corpus() -> dict[str, str]:
    """name -> response text (cached: do not modify). The first block is issue 9's inputs, the rest generic
    pathologies."""
    digits400 = "9" * 400
    c = {
        # --- issue 9
        "issue_answer_x30000": _rep("<answer>"),
        "issue_paren_50k_digits": "(" + "1" * 50_000,
        "issue_bracket_x100k": "[" * 100_000,
        "issue_400_digit_coord_list": f"Answer: [{digits400}, 0.5]",
        "issue_400_digit_coord_tuple": f"[({digits400}, 2), (0.5, 0.5)]",
        "issue_400_digit_decimal": f"({digits400}.5, 0.5)",
        "issue_400_digit_literal_tuple": f"Answer: [({digits400}, -1)]",
        "issue_400_digit_literal_list": f"Answer: [[{digits400}, -1], [0.5, 0.5]]",
        "issue_20_boxes": _boxes(20),
        "issue_60_boxes": _boxes(60),
        "issue_60_norm_boxes": _boxes(60, "(0.0, 0.0, 1.0, 1.0)"),
        "issue_phyx_keywords_x5000": "correct answer option " * 5000,
        # --- tags and extraction
        "think_close_x": _rep("</think>"),
        "think_open_x": _rep("<think>"),
        "thought_close_x": _rep("</thought>x"),
        "answer_close_x": _rep("</answer>"),
        "answer_pairs_x": _rep("<answer></answer>"),
        "answer_open_close_think": "<think>" + _rep("</think><answer>", SIZE // 2),
        "boxed_open_x": _rep("\\boxed{"),
        "boxed_nested": "\\boxed{" * 50_000 + "B" + "}" * 50_000,
        "text_open_x": _rep("\\text{"),
        "frac_open_x": _rep("\\frac{1}{"),
        "answer_at_end_of_long_text": _rep("blah ") + "<answer>B</answer>",
        "past_tail_bound_1mb": "x" * 1_000_000 + "<think>r</think><answer>B</answer>",
        # --- numbers and points
        "digits_250k": "1" * SIZE,
        "digits_over_int_limit": "9" * 5000,
        "big_int_tuples": _rep("(" + "9" * 4299 + ", " + "9" * 4299 + ") "),
        "decimal_runs": _rep("1.1."),
        "thousands_commas": _rep("1,234,"),
        "fractions": _rep("1/"),
        "paren_pairs_no_close": _rep("(1, 1"),
        "paren_pairs_many": _rep("(1, 1) "),
        "bracket_pairs_no_close": _rep("[1, 1"),
        "nested_list_no_close": _rep("[[1, 1], "),
        "flat_list_long": "Answer: [" + _rep("1,") + "]",
        "tuple_list_long": "Answer: [" + _rep("(1, -1), ") + "]",
        "nested_lists_many": "[" + ", ".join(["[0.5, 0.5]"] * 20_000) + "]",
        "paren_digits_spaces": "(" + "1 " * (SIZE // 2),
        "xy_objects": _rep('{"x": 1, "y": '),
        "molmo_points": _rep('<points x1="1" y1="1" '),
        "qwen_box": _rep("<|box_start|>(1,1),"),
        "exponents": _rep("1e9"),
        "huge_exponent": "1e999999 and 9e-999999",
        "nan_inf": "nan inf -inf NaN Infinity (nan, inf) [inf, -inf] 1e309 (1e309, 2) [1e999, 0.5]",
        "number_words": _rep("one hundred and "),
        "negative_coords": "[(-5, -5), (-0.5, 0.5)] (-1, -1, -640, -480)",
        # --- choice keywords
        "answer_colon_x": _rep("Answer: "),
        "option_letters": _rep("A. "),
        "paren_letters": _rep("(A) "),
        "letter_then_spaces": "A." + " " * SIZE + "\n\n",
        "capitals": "A" * SIZE,
        "lower": "a" * SIZE,
        "answer_is_x": _rep("the answer is "),
        "yes_no_x": _rep("yes no "),
        # --- structure
        "deep_json": "{" * 50_000 + '"answer": "A"' + "}" * 50_000,
        "deep_json_list": "[" * 50_000 + "]" * 50_000,
        "deep_parens": "(" * 100_000,
        "json_action_open_x": _rep('{"action": '),
        "numbered_steps": _rep("1. pick\n"),
        "arrows": _rep("->"),
        "newlines": "\n" * SIZE,
        "spaces": " " * SIZE,
        "tabs_and_returns": _rep("\t\r\n\x0b\x0c"),
        # --- text encodings
        "empty": "",
        "whitespace": "   \n\t ",
        "null_bytes": "\x00" * 10_000 + "B" + "\x00" * 10_000,
        "unicode_mix": "Ｂ ſ İ ı K ﬀ 🙂 \u202e\u2028 é ́ 答案是B",
        "astral_x": _rep("🙂"),
        "lone_surrogate": "\ud800 (0.5, 0.5) \udfff B",
        "combining_marks": "B" + "\u0301" * SIZE,
    }
    return c


# ------------------------------------------------------------------------------------------- scorer cases
@dataclass(frozen=True)
class Case:
    """One scorer configuration and the doc it scores against."""

    name: str
    scorer: str
    options: dict[str, Any]
    doc: Doc


def _mask() -> np.ndarray:
    m = np.zeros((480, 640), dtype=np.uint8)
    m[200:300, 300:400] = 255
    m[0:50, 0:50] = 153
    return m


_POLY = "[(0.2, 0.2), (0.6, 0.25), (0.55, 0.6), (0.15, 0.55)]"
_OPTS = [f"{c}. option {c.lower()}" for c in "ABCDE"]


def _docs_for(scorer: str, options: dict[str, Any], mask_path: Path | None) -> list[Doc]:
    """The docs a scorer is exercised on (one per kind of target it handles)."""
    def doc(target: Any, subtask: str | None = None, **meta: Any) -> Doc:
        return Doc(id="p", task=scorer, prompt="", target=target, subtask=subtask, meta=meta)

    mask = _mask()
    if scorer in ("mvbench", "cosmos", "erqa", "omni_spatial", "emb_spatial", "phyx_mc", "egoplan"):
        return [doc("B", "s")]
    if scorer == "egoschema":
        return [doc("1", options=_OPTS)]
    if scorer == "blink":
        return [doc("(B)", "counting", choices=["2", "3", "4"], question="How many?")]
    if scorer == "where2place":
        return [doc(mask, image_size=(640, 480))]
    if scorer == "ref_spatial":
        return [doc(mask, "location")]
    if scorer == "robo_spatial":
        return [doc(_POLY, "context"), doc("yes", "compatibility", image_size=(640, 480))]
    if scorer == "vsibench":
        return [doc("B", question_type="route_planning"), doc("4", question_type="object_counting")]
    if scorer == "closed_loop":
        return [doc(None, "env")]
    if scorer == "sample_metrics":
        samples = _samples(mask_path)
        if "count_metric" in options:  # only changes how counts are scored
            samples = [s for s in samples if s.answer_type is AnswerType.COUNT]
        return [doc(s) for s in samples]
    raise KeyError(f"no pathological-corpus doc for scorer {scorer!r}: add one to tests/benchmarks/pathological.py")


def _samples(mask_path: Path | None) -> list[EmbodiedSample]:
    """One EmbodiedSample per answer type of :func:`dppo_embodied.metrics.score_sample` (points in all 3 regions)."""
    def s(i: str, t: AnswerType, answer: Any, **kw: Any) -> EmbodiedSample:
        return EmbodiedSample(id=f"p/{i}", source="corpus", question="q", answer=answer, answer_type=t, **kw)

    out = [
        s("mcq", AnswerType.MCQ, "B", options=["red cup", "blue cup", "green cup"]),
        s("yn", AnswerType.YES_NO, "yes"),
        s("num", AnswerType.NUMBER, 1.5, metadata={"unit": "m"}),
        s("count", AnswerType.COUNT, 3),
        s("count_mra", AnswerType.COUNT, 3, metadata={"count_metric": "mra"}),
        s("pts_poly", AnswerType.POINTS, [[0.4, 0.4]], metadata={"polygon": [[0.2, 0.2], [0.6, 0.2], [0.5, 0.6]],
                                                                 "image_size": [640, 480]}),
        s("pts_ref", AnswerType.POINTS, [[0.5, 0.5]]),
        s("bbox", AnswerType.BBOX, [0.1, 0.1, 0.5, 0.5]),
        s("seq", AnswerType.SEQUENCE, ["pick red", "place bowl"], options=["pick red", "place bowl", "push"]),
        s("free", AnswerType.FREE, "red cup"),
        s("action", AnswerType.ACTION, {"type": "move", "dx_cm": 1, "gripper": "close"}),
    ]
    if mask_path is not None:
        out.append(s("pts_mask", AnswerType.POINTS, [[0.5, 0.5]],
                     metadata={"mask": str(mask_path), "image_size": [640, 480]}))
    return out


def _variants(scorer: str) -> list[dict[str, Any]]:
    """The default options plus each non-default value of every option with declared choices that changes how a
    response is read (not ``aggregation``; no live judge)."""
    cls = SCORERS.get(scorer)
    out: list[dict[str, Any]] = [{}]
    for name, (default, allowed) in cls.OPTIONS.items():
        for value in allowed or ():
            if value != default and name != "aggregation" and not (name == "judge_fallback" and value == "judge"):
                out.append({name: value})
    return out


def task_scorers() -> dict[str, tuple[str, dict[str, Any]]]:
    """task -> (scorer name, the task YAML's scorer options) for every task in ``benchmarks/tasks``."""
    from benchmarks.task import TaskManager

    tm = TaskManager()
    return {t.task: (t.scorer, dict(t.scorer_options)) for t in tm.tasks.values()}


def cases(mask_path: Path | None = None) -> list[Case]:
    """Every scorer used by a task (with its options and every declared variant) x the docs it handles."""
    out: list[Case] = []
    seen: set[tuple[str, str]] = set()
    for task, (scorer, task_opts) in sorted(task_scorers().items()):
        for variant in _variants(scorer):
            opts = {**task_opts, **variant}
            key = (scorer, repr(sorted(opts.items())))
            if key in seen:
                continue
            seen.add(key)
            label = ",".join(f"{k}={v}" for k, v in variant.items()) or "default"
            for i, d in enumerate(_docs_for(scorer, variant, mask_path)):
                out.append(Case(f"{task}[{label}]#{i}", scorer, opts, d))
    return out


def run_case(case: Case, response: str) -> float | None:
    """Score one response with a fresh scorer; returns the score (raises what the scorer raises)."""
    score = make_scorer(case.scorer, case.doc.task, case.options).score(case.doc, response).score
    assert score is None or (isinstance(score, float) and math.isfinite(score) and 0.0 <= score <= 1.0), score
    return score


# ------------------------------------------------------------------------------------------- measurement
def _forked(fn: Callable[[], dict[str, Any]], limit_s: float) -> dict[str, Any]:
    """Run ``fn`` in a forked child; its result dict, or ``{"hang": True}`` after ``limit_s``."""
    import json
    import os
    import select
    import signal
    import time

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        try:
            out = fn()
        except BaseException as e:
            out = {"crash": f"{type(e).__name__}: {str(e)[:120]}"}
        os.write(w, json.dumps(out).encode())
        os._exit(0)
    os.close(w)
    t0 = time.monotonic()
    ready, _, _ = select.select([r], [], [], limit_s)
    if not ready:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(r)
        return {"hang": True, "wall_s": time.monotonic() - t0}
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(data or b'{"crash": "child died"}')


def measure_call(case: Case, response: str) -> dict[str, Any]:
    """Wall time, CPU time and tracemalloc peak of one scoring call (run in the current process)."""
    import time
    import tracemalloc

    t0, c0 = time.perf_counter(), time.process_time()
    run_case(case, response)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    tracemalloc.start()
    try:
        run_case(case, response)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return {"wall_s": wall, "cpu_s": cpu, "peak_mb": peak / 2**20}


def iter_measurements(limit_s: float, only: set[str] | None = None, mask_path: Path | None = None
                      ) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(case name, input name, result) for every pair, each in a forked child with a wall-clock limit."""
    texts = corpus()
    for case, (name, text) in itertools.product(cases(mask_path), texts.items()):
        if only and name not in only:
            continue
        yield case.name, name, _forked(lambda c=case, t=text: measure_call(c, t), limit_s)


def main(argv: list[str] | None = None) -> int:
    """Measure every (scorer case, input) pair and print the summary (optionally all rows as JSON)."""
    import argparse
    import json
    import tempfile

    from PIL import Image

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--limit-s", type=float, default=10.0, help="wall-clock limit per call (reported as a hang)")
    p.add_argument("--only", help="comma-separated input names")
    p.add_argument("--json", help="write every row to this file")
    args = p.parse_args(argv)
    only = set(args.only.split(",")) if args.only else None
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        mask_path = Path(tmp) / "mask.png"
        Image.fromarray(_mask()).save(mask_path)
        for case_name, input_name, res in iter_measurements(args.limit_s, only, mask_path):
            rows.append({"case": case_name, "input": input_name, **res})
            if "hang" in res or "crash" in res:
                print(f"{case_name:48s} {input_name:30s} {res}", flush=True)
    ok = [r for r in rows if "wall_s" in r and "hang" not in r]
    worst = max(ok, key=lambda r: r["wall_s"], default=None)
    peak = max(ok, key=lambda r: r.get("peak_mb", 0), default=None)
    print(f"calls: {len(rows)} ({len({r['case'] for r in rows})} scorer cases x {len({r['input'] for r in rows})} "
          f"inputs); crashes: {sum('crash' in r for r in rows)}; hangs (> {args.limit_s:g} s): "
          f"{sum('hang' in r for r in rows)}")
    if worst:
        print(f"worst wall time per call: {worst['wall_s']:.3f} s ({worst['case']} / {worst['input']})")
    if peak:
        print(f"worst tracemalloc peak per call: {peak['peak_mb']:.1f} MiB ({peak['case']} / {peak['input']})")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
