"""`dppo eval run/score/check`: --data TASK=DIR gives a task's own folder, --data-root means the same for every
subcommand, and every missing dataset is listed at once (with its download command) before a model is loaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import backends
from benchmarks.cli import main
from tests.benchmarks import fixtures as fx


def _qa(root: Path) -> Path:
    """A two-sample tabletop_qa folder (EmbodiedSample JSONL, no media)."""
    from dppo_embodied.types import AnswerType, EmbodiedSample, write_samples

    samples = [EmbodiedSample(id=f"qa/{i}", source="test", question=f"How many blocks? ({i})", answer=i + 1,
                              answer_type=AnswerType.COUNT, capabilities=["quantitative_numerical"])
               for i in range(2)]
    write_samples(samples, root / "heldout.jsonl")
    return root


def test_run_takes_a_task_folder_with_data(tmp_path: Path) -> None:
    data = _qa(tmp_path / "data" / "heldout")
    out = tmp_path / "out"
    assert main(["run", "--model", "A", "--backend", "fake", "--tasks", "tabletop_qa", "--data",
                 f"tabletop_qa={data}", "--out", str(out), "--no-progress"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["tasks"]["tabletop_qa"]["n"] == 2


def test_every_missing_dataset_is_listed_before_the_model_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    def no_model(*a: object, **k: object) -> None:
        raise AssertionError("the backend was built although datasets are missing")

    monkeypatch.setattr(backends, "make_backend", no_model)
    (tmp_path / "bench").mkdir()
    fx.make_erqa(tmp_path / "bench" / "erqa")
    rc = main(["run", "--model", "ckpt", "--backend", "hf", "--tasks", "erqa,blink,where2place,tabletop_qa",
               "--data-root", str(tmp_path / "bench"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 1
    assert "3 dataset(s) missing" in err
    for task, repo in (("blink", "BLINK-Benchmark/BLINK"), ("where2place", "wentao-yuan/where2place")):
        assert f"hf download {repo} --repo-type dataset --local-dir {tmp_path / 'bench' / task}" in err
    assert "dppo data generate --suite tabletop-qa" in err
    assert "huggingface-cli" not in err and "erqa:" not in err
    assert not (tmp_path / "out").exists()


def test_data_root_given_a_task_folder_says_to_use_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _qa(tmp_path / "heldout")
    rc = main(["check", "--tasks", "tabletop_qa", "--data-root", str(data)])
    err = capsys.readouterr().err
    assert rc == 1 and f"pass --data tabletop_qa={data}" in err
    assert main(["check", "--tasks", "tabletop_qa", "--data", f"tabletop_qa={data}"]) == 0


def test_data_for_an_unselected_task_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _qa(tmp_path / "heldout")
    assert main(["check", "--tasks", "erqa", "--data", f"tabletop_qa={data}", "--data", "erqa=/x"]) == 1
    assert "tabletop_qa is not among the selected tasks" in capsys.readouterr().err


def test_score_data_root_means_what_it_means_for_run(tmp_path: Path) -> None:
    fx.make_erqa(tmp_path / "bench" / "erqa")
    resp = tmp_path / "resp.jsonl"
    resp.write_text("".join(json.dumps({"id": f"erqa/{i}", "response": "A"}) + "\n" for i in range(3)))
    for flags in (["--data-root", str(tmp_path / "bench")], ["--data", f"erqa={tmp_path / 'bench' / 'erqa'}"]):
        out = tmp_path / f"out{len(flags[1])}"
        assert main(["score", "--task", "erqa", *flags, "--responses", str(resp), "--out", str(out)]) == 0
        assert json.loads((out / "results.json").read_text())["tasks"]["erqa"]["n"] == 3
    # the dataset folder itself as --data-root is refused with the flag that takes it
    assert main(["score", "--task", "erqa", "--data-root", str(tmp_path / "bench" / "erqa"), "--responses",
                 str(resp), "--out", str(tmp_path / "o3")]) == 1
