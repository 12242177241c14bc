"""The run report's two plots write a PNG (parent folders made) through one save step."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.runs.report import plot_compare, plot_run

pytest.importorskip("matplotlib")

CURVE = [{"step": "k0", "compute_s": 0.0, "overall": 10.0}, {"step": "k1", "compute_s": 5.0, "overall": 40.0}]


def test_both_plots_write_a_png_into_new_folders(tmp_path: Path) -> None:
    base = {"overall": 10.0, "per_capability": {"counting": 10.0, "spatial": 20.0}}
    final = {"overall": 40.0, "per_capability": {"counting": 50.0, "spatial": 30.0}}
    written = [plot_run(tmp_path / "a" / "run.png", base, final, CURVE),
               plot_compare(tmp_path / "b" / "c" / "compare.png", {"dppo": CURVE, "sft": CURVE[:1]}, target=30.0)]
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_curve_table_shows_each_phase_change_and_the_sampled_column_only_when_measured() -> None:
    from training.runs.report import curve_table

    md = curve_table([{**CURVE[0], "general": 30.0}, {**CURVE[1], "general": 35.0}])
    assert "| k1 | 40.0 (+30.0) | 35.0 | 5 |" in md and "sampled" not in md
    md = curve_table([{**CURVE[0], "sampled": 8.0}, {**CURVE[1], "sampled": 6.5}])
    assert "| k1 | 40.0 (+30.0) | 6.5 (-1.5) | – | 5 |" in md


def test_the_run_summary_carries_closed_loop_success_per_environment(tmp_path: Path) -> None:
    """summary.json's ``closed_loop`` entry (base and final success per environment, and per curve point) comes
    from the held-out episode records of each evaluation; a run without closed-loop tasks has none."""
    from benchmarks.results import load_results, save_results
    from training.algorithm.evaluation import closed_loop_success, summarize
    from training.runs.report import summarize_run

    def ep(env: str, score: float) -> dict:
        return {"subtask": env, "score": score, "capabilities": ["decision_planning"]}

    evals = {"base": [ep("TabletopPick-v0", 0.0)] * 3 + [ep("TabletopPush-v0", 1.0)],
             "k1": [ep("TabletopPick-v0", 1.0)] * 2 + [ep("TabletopPick-v0", 0.0), ep("TabletopPush-v0", 0.0)]}
    assert closed_loop_success(evals["k1"]) == {"TabletopPick-v0": 66.67, "TabletopPush-v0": 0.0}
    for with_episodes in (True, False):
        out = tmp_path / str(with_episodes)
        for seq, (tag, recs) in enumerate(evals.items()):
            folder = out / "eval" / tag
            data = load_results(folder)
            data["metaloop"] = {"tag": tag, "seq": seq, "compute_s": float(seq), "heldout": summarize(recs),
                                "general": None,
                                **({"closed_loop": closed_loop_success(recs)} if with_episodes else {})}
            save_results(folder, data)
        summary = summarize_run(out, "t", {"mode": "dppo", "sampling": "difficulty", "loops_done": 1,
                                           "compute_s": 1.0}, write=False)
        if not with_episodes:
            assert "closed_loop" not in summary
            continue
        assert summary["closed_loop"] == {"base": {"TabletopPick-v0": 0.0, "TabletopPush-v0": 100.0},
                                          "final": {"TabletopPick-v0": 66.67, "TabletopPush-v0": 0.0}}
        assert [p["closed_loop"]["TabletopPick-v0"] for p in summary["curve"]] == [0.0, 66.67]


def test_per_template_tells_a_template_answered_from_the_image_from_one_answered_the_same_always(
        tmp_path: Path) -> None:
    """summary.json's ``per_template``: success of the base and the final evaluation per question template, the best
    single answer's success (scored by the one success function: MRA numbers count from 0.5) and the final model's
    most common answer; summary.md marks a template answered one way."""
    import json

    from benchmarks.results import load_results, save_results
    from dppo_embodied.metrics import score_sample
    from dppo_embodied.types import AnswerType, EmbodiedSample, write_samples
    from training.algorithm.evaluation import summarize
    from training.runs.report import summarize_run

    def q(i: int, template: str, answer: object, kind: AnswerType) -> EmbodiedSample:
        return EmbodiedSample(f"q{i}", "tabletop-qa", "?", answer, kind, metadata={"template": template})

    samples = [q(i, "count_all", 1 + i % 4, AnswerType.COUNT) for i in range(8)]
    samples += [q(8 + i, "exists", "yes" if i < 3 else "no", AnswerType.YES_NO) for i in range(4)]
    samples += [q(12 + i, "height_cm", h, AnswerType.NUMBER) for i, h in enumerate([4.0, 5.0, 5.0, 12.0])]
    (tmp_path / "data").mkdir()
    write_samples(samples, tmp_path / "data" / "heldout.jsonl")
    said = {"base": {s.id: "<answer>no</answer>" for s in samples},
            "k1": {**{s.id: f"<answer>{s.answer}</answer>" for s in samples[:6]},  # counts: 6 of 8 read right
                   **{s.id: "<answer>2</answer>" for s in samples[6:8]},
                   **{s.id: "<answer>no</answer>" for s in samples[8:12]},      # exists: always "no"
                   **{s.id: "<answer>5</answer>" for s in samples[12:]}}}       # heights: always 5 cm
    for seq, (tag, answers) in enumerate(said.items()):
        folder = tmp_path / "eval" / tag
        recs = []
        for s in samples:
            got = score_sample(s, answers[s.id])  # as the evaluation scores it
            recs.append({"id": s.id, "task": "heldout_qa", "response": answers[s.id], "parsed": got.parsed,
                         "score": float(got.success), "capabilities": ["perception_grounding"]})
        (folder / "heldout_qa").mkdir(parents=True)
        (folder / "heldout_qa" / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
        data = load_results(folder)
        data["metaloop"] = {"tag": tag, "seq": seq, "compute_s": float(seq), "heldout": summarize(recs),
                            "general": None}
        save_results(folder, data)
    summary = summarize_run(tmp_path, "t", {"mode": "dppo", "sampling": "difficulty", "loops_done": 1,
                                             "compute_s": 1.0})
    table = summary["per_template"]
    assert table["count_all"] == {"n": 8, "base": 0.0, "final": 75.0, "best_constant": 25.0, "final_answer": "2",
                                  "final_share": 50.0}
    assert table["exists"]["final"] == 25.0 and table["exists"]["best_constant"] == 75.0
    assert table["exists"]["final_share"] == 100.0
    # "5" is within MRA's 0.5 of 4, 5 and 5 cm, not of 12 cm: the best single height solves 3 of 4
    assert table["height_cm"]["best_constant"] == 75.0
    md = (tmp_path / "summary.md").read_text()
    assert "| exists | 4 | 25.0 | 25.0 | 75.0 | `no` 100 % (one answer) |" in md
    assert "| count_all | 8 | 0.0 | 75.0 | 25.0 | `2` 50 % |" in md
