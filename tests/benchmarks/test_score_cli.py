"""`dppo eval score`: re-scoring another harness's responses gives the exact, hand-computed official numbers, and
never changes a denominator silently (unmatched, repeated and missing ids are listed; no match at all is an error)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from benchmarks.cli import main
from tests.benchmarks import fixtures as fx

# task -> (fixture, {id: response}, expected overall, expected subtasks or None, extra options)
CASES: dict[str, tuple[Callable[[Path], Path], dict[str, str], float, dict[str, float] | None, list[str]]] = {
    # action_sequence: A right, empty excluded, "(B)" wrong -> 50; action_count: 3/3 -> 100; mean of tasks 75
    "mvbench": (fx.make_mvbench, {"action_sequence/0": "A", "action_sequence/1": "", "action_sequence/2": "(B)",
                                  "action_count/0": "<think>one</think>A", "action_count/1": "B. close the door",
                                  "action_count/2": "C"},
                75.0, {"mvbench_action_sequence": 50.0, "mvbench_action_count": 100.0}, []),
    # counting MRA(5, 4) = 0.6, distance 1.0, rel_direction mean(1, 0) = 0.5, route 0.5 -> unweighted mean 65
    "vsibench": (fx.make_vsibench, {"1": "5", "2": "2", "3": "A", "4": "A", "5": "C.", "6": "B"}, 65.0,
                 {"vsibench_object_counting": 60.0, "vsibench_object_abs_distance": 100.0,
                  "vsibench_route_planning": 50.0, "vsibench_object_rel_direction": 50.0}, []),
    # 0: one of two points inside -> 0.5; 1: pixel point in a 153/255 mask -> 0.6; 2: nested list -> invalid
    "where2place": (fx.make_where2place, {"0": "[(0.55, 0.52), (0.1, 0.1)]", "1": "(350, 250)", "2": "[[350, 250]]"},
                    55.0, None, []),
    # Counting 2/3, Jigsaw 1/1: macro (66.67 + 100) / 2
    "blink": (fx.make_blink, {"val_Counting_1": "A", "val_Counting_2": "(A)",
                              "val_Counting_3": "I count 2, so (A) is right", "val_Jigsaw_1": "B"},
              (200 / 3 + 100) / 2, {"blink_counting": 200 / 3, "blink_jigsaw": 100.0}, []),
    "robo_spatial": (fx.make_robo_spatial, {"context/0": "Answer: [(0.4, 0.4)]", "context/1": "Answer: [(0.9, 0.9)]",
                                            "compatibility/0": "It fits.\nAnswer: Yes",
                                            "compatibility/1": "No, it is too big."},
                     75.0, {"robo_spatial_context": 50.0, "robo_spatial_compatibility": 100.0}, []),
    "erqa": (fx.make_erqa, {"erqa/0": "A.", "erqa/1": "b", "erqa/2": "The answer is C"}, 200 / 3, None, []),
    "egoschema_subset": (fx.make_egoschema, {"vid0": "A", "vid1": "(B) option b", "vid2": "C."}, 100.0, None, []),
    "cosmos": (fx.make_cosmos, {"robovqa_benchmark_qa_pairs/0": "A", "robovqa_benchmark_qa_pairs/1": "The answer is B",
                                "robofail_benchmark_qa_pairs/0": "B", "robofail_benchmark_qa_pairs/1": "B"},
               50.0, {"cosmos_robovqa": 50.0, "cosmos_robofail": 50.0}, []),
    "phyx_mini_mc": (fx.make_phyx, {"100": "The correct answer is A", "101": "C"}, 50.0, None, []),
    # location: 1.0 and 0.5; placement: no parenthesised point -> 0 (valid); micro mean 0.5
    "ref_spatial_bench": (fx.make_ref_spatial, {"location/0": "(0.55, 0.52)", "location/1": "(350, 250), (10, 10)",
                                                "placement/0": "[[0.5, 0.5]]"}, 50.0, None, []),
    "emb_spatial_bench": (fx.make_emb_spatial, {"mp3d_0": "A", "mp3d_1": "The answer is B.", "mp3d_2": "D"},
                          200 / 3, None, []),
    "omni_spatial": (fx.make_omni_spatial, {"0_0": "a", "1_0": "C"}, 50.0, None, []),
    # the same BLINK responses under VLMEvalKit's micro average
    "blink@micro": (fx.make_blink, {"val_Counting_1": "A", "val_Counting_2": "(A)",
                                    "val_Counting_3": "I count 2, so (A) is right", "val_Jigsaw_1": "B"},
                    75.0, None, ["--option", "aggregation=micro"]),
}


#: the subtasks the fixtures hold (a complete snapshot has them all; these fixtures hold a few)
SELECT = {"mvbench": "mvbench_action_sequence,mvbench_action_count", "blink": "blink_counting,blink_jigsaw",
          "robo_spatial": "robo_spatial_context,robo_spatial_compatibility",
          "cosmos": "cosmos_robovqa,cosmos_robofail",
          "ref_spatial_bench": "ref_spatial_bench_location,ref_spatial_bench_placement"}


def _score(task: str, root: Path, resp: Path, out: Path, *extra: str) -> int:
    return main(["score", "--task", SELECT.get(task, task), "--data", f"{task}={root}", "--responses", str(resp),
                 "--out", str(out), *extra])


@pytest.mark.parametrize("case", sorted(CASES))
def test_score_gives_exact_official_numbers(case: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    task = case.split("@")[0]
    make, responses, overall, subtasks, extra = CASES[case]
    root = make(tmp_path / "ds")
    resp = tmp_path / "responses.jsonl"
    fx.write_jsonl(resp, [{"id": k, "response": v} for k, v in responses.items()])
    out = tmp_path / "out"
    assert _score(task, root, resp, out, *extra) == 0
    entry = json.loads((out / "results.json").read_text())["tasks"][task]
    assert entry["overall"] == pytest.approx(overall, abs=1e-9)
    if subtasks is not None:
        for k, v in subtasks.items():
            assert entry["subtasks"][k] == pytest.approx(v, abs=1e-9)
    rows = [json.loads(x) for x in (out / task / "samples.jsonl").read_text().splitlines()]
    assert {r["id"] for r in rows} == set(responses) and all("score" in r for r in rows)
    assert json.loads(capsys.readouterr().out)["overall"] == pytest.approx(overall, abs=1e-9)


def test_unmatched_repeated_and_missing_ids_are_listed_and_missing_ones_fail(tmp_path: Path,
                                                                            capsys: pytest.CaptureFixture) -> None:
    root = fx.make_erqa(tmp_path / "ds")
    resp = fx.write_jsonl(tmp_path / "r.jsonl", [{"id": "erqa/0", "response": "B"}, {"id": "nope", "response": "A"},
                                                 {"id": "erqa/0", "response": "A"}, "{broken"])
    assert main(["score", "--task", "erqa", "--data", f"erqa={root}", "--responses", str(resp),
                 "--out", str(tmp_path / "out")]) == 0
    entry = json.loads((tmp_path / "out" / "results.json").read_text())["tasks"]["erqa"]
    r = entry["responses"]
    assert r["unmatched"] == {"count": 1, "examples": ["nope"]}
    assert r["duplicates"] == {"count": 1, "examples": ["erqa/0"], "rows": 2}
    assert r["missing"] == {"count": 2, "examples": ["erqa/1", "erqa/2"]}
    assert r["malformed_lines"]["count"] == 1 and r["matched"] == 1 and r["rows"] == 3
    assert r["missing_counted_as"] == "failed" and r["denominator"] == r["dataset_samples"] == 3
    # the last row of a repeated id wins ("A" is right); the two samples without a response count as wrong
    assert entry["n"] == 3 and entry["n_failed"] == 2 and entry["overall"] == pytest.approx(100 / 3)
    recs = {json.loads(x)["id"]: json.loads(x) for x in (tmp_path / "out" / "erqa" / "samples.jsonl").read_text()
            .splitlines()}
    assert recs["erqa/1"]["response"] is None and recs["erqa/1"]["error"].startswith("no response: id 'erqa/1'")
    err = capsys.readouterr().err
    assert "erqa: 1 response id(s) match no sample; first: nope" in err
    assert "erqa: 1 response id(s) appear more than once (the last row wins); first: erqa/0" in err
    assert "erqa: 2 sample(s) have no response -> counted as failed; first: erqa/1, erqa/2" in err
    assert "erqa: denominator 3 of 3 dataset samples (1 matched response(s))" in err


def test_allow_missing_leaves_them_out_and_says_which_denominator(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    root = fx.make_erqa(tmp_path / "ds")
    resp = fx.write_jsonl(tmp_path / "r.jsonl", [{"id": "erqa/0", "response": "A"}, {"id": "erqa/2", "response": "B"}])
    assert main(["score", "--task", "erqa", "--data", f"erqa={root}", "--responses", str(resp),
                 "--out", str(tmp_path / "out"), "--allow-missing"]) == 0
    entry = json.loads((tmp_path / "out" / "results.json").read_text())["tasks"]["erqa"]
    assert entry["n"] == 2 and entry["n_failed"] == 0 and entry["overall"] == 50.0
    assert entry["responses"]["denominator"] == 2 and entry["responses"]["dataset_samples"] == 3
    assert entry["responses"]["missing_counted_as"] == "excluded (--allow-missing)"
    out = capsys.readouterr()
    assert json.loads(out.out)["denominator"] == 2
    assert "1 sample(s) have no response -> left out (--allow-missing); first: erqa/1" in out.err
    assert "denominator 2 of 3 dataset samples" in out.err
    assert len((tmp_path / "out" / "erqa" / "samples.jsonl").read_text().splitlines()) == 2


@pytest.mark.parametrize(("make", "task", "old_ids"), [
    (fx.make_cosmos, "cosmos_robovqa", ["robovqa/0", "robovqa/1"]),  # the old <subset folder>/<row> ids
    (fx.make_erqa, "erqa", []),  # an empty responses file
])
def test_a_responses_file_that_matches_nothing_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                           make, task: str, old_ids: list[str]) -> None:
    root = make(tmp_path / "ds")
    resp = fx.write_jsonl(tmp_path / "r.jsonl", [{"id": i, "response": "A"} for i in old_ids])
    base = make.__name__.removeprefix("make_")  # the task of a <task>_<subtask> selection
    assert main(["score", "--task", task, "--data", f"{base}={root}", "--responses", str(resp),
                 "--out", str(tmp_path / "out"), "--allow-missing"]) == 1
    err = capsys.readouterr().err
    assert f"none of its {len(old_ids)} response id(s) matches one of the" in err
    if old_ids:
        assert "'robovqa/0'" in err and "'robovqa_benchmark_qa_pairs/0'" in err
    assert not (tmp_path / "out" / "results.json").exists()


def test_score_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    resp = fx.write_jsonl(tmp_path / "r.jsonl", [{"id": "x", "response": "A"}])
    assert main(["score", "--task", "erqa", "--data-root", str(tmp_path / "missing"), "--responses", str(resp),
                 "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "hf download embodiedreasoning/ERQA --repo-type dataset" in err
    assert main(["score", "--task", "nope", "--data-root", str(tmp_path), "--responses", str(resp),
                 "--out", str(tmp_path / "out")]) == 1
    assert "valid choices" in capsys.readouterr().err
    assert main(["score", "--task", "blink", "--data-root", str(tmp_path), "--responses", str(resp),
                 "--out", str(tmp_path / "out"), "--option", "aggregation=median"]) == 1


def test_egoschema_full_set_writes_submission(tmp_path: Path) -> None:
    root = fx.make_egoschema(tmp_path / "ds")
    resp = fx.write_jsonl(tmp_path / "r.jsonl", [{"id": f"vid{i}", "response": "ABC"[i]} for i in range(3)])
    assert main(["score", "--task", "egoschema", "--data", f"egoschema={root}", "--responses", str(resp),
                 "--out", str(tmp_path / "out")]) == 0
    sub = json.loads((tmp_path / "out" / "egoschema" / "submission.json").read_text())
    assert sub == {"vid0": 0, "vid1": 1, "vid2": 2}
    entry = json.loads((tmp_path / "out" / "results.json").read_text())["tasks"]["egoschema"]
    assert entry["overall"] is None and entry["n_excluded"] == 3
