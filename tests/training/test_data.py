"""Data plumbing: prompts/targets, media loading, the SFT mix, generator calls, horizon filter."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from dppo_embodied.errors import DataError, MediaError
from dppo_embodied.media import MediaLoader
from dppo_embodied.rendering import prompt_text, render_sample
from dppo_embodied.types import AnswerType, EmbodiedSample
from training.algorithm.data_sources import general_eval_path, generate, prepare_data, pretrain_data, read_data
from training.algorithm.data_sources_config import DataSettings
from training.algorithm.sample_io import horizon_of, loadable, oracle_target, task_of, tokenizer_corpus
from training.phases.sft import mix


def test_prompt_and_target(samples: list) -> None:
    mcq = next(s for s in samples if s.answer_type is AnswerType.MCQ)
    text = prompt_text(mcq)
    assert text.startswith(mcq.question) and "(A) red" in text and text.endswith("Answer in <answer></answer>.")
    assert oracle_target(mcq) == f"<answer>{mcq.answer}</answer>"
    mcq.reasoning = "because"
    assert oracle_target(mcq, with_reasoning=True) == f"<think>because</think><answer>{mcq.answer}</answer>"
    conv = render_sample(mcq, MediaLoader()).chat_messages()
    assert [p["type"] for p in conv[-1]["content"]] == ["image"] * len(mcq.images) + ["text"]
    assert task_of(mcq) == "colour"


def test_media_loader_errors(samples: list, tmp_path: Path) -> None:
    loader = MediaLoader()
    assert loader.load(samples[0])[0].size == (64, 64)
    missing = EmbodiedSample("m", "t", "q", "yes", AnswerType.YES_NO, images=[str(tmp_path / "nope.png")])
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"xx")
    corrupt = EmbodiedSample("c", "t", "q", "yes", AnswerType.YES_NO, images=[str(bad)])
    with pytest.raises(MediaError, match="does not exist"):
        loader.load(missing)
    skipped: list = []
    assert loadable([samples[0], missing, corrupt], loader, skipped) == [samples[0]]
    assert [s["id"] for s in skipped] == ["m", "c"]


def test_mix_ratios_and_empty_sources(samples: list) -> None:
    weak = [(samples[0], "<answer>A</answer>")]
    out = mix(weak, samples[1:4], samples[4:6], [1, 2, 1], size=400, seed=0)
    assert len(out) == 400
    c = Counter("weak" if t == "<answer>A</answer>" and s is samples[0] else
                "gen" if s in samples[4:6] else "assoc" for s, t in out)
    assert c == {"weak": 100, "assoc": 200, "gen": 100}
    only = mix([], samples[1:4], [], [1, 2, 1], size=30, seed=0)  # empty sources give their share away
    assert len(only) == 30 and mix([], [], [], [1, 1, 1], 10, 0) == []
    own = [(samples[6], "<answer>mine</answer>")]  # D_self: a weight next to the three ratios; 0 leaves it out
    with_own = Counter(t for _, t in mix(weak, [], samples[4:6], [1, 0, 1], size=300, seed=0, own=own, own_weight=1))
    assert with_own["<answer>mine</answer>"] == with_own["<answer>A</answer>"] == 100
    assert all(t != "<answer>mine</answer>" for _, t in mix(weak, [], samples[4:6], [1, 0, 1], 30, 0, own=own))


def test_generate_keywords_templates_and_heldout(tmp_path: Path) -> None:
    name = "tests.training.synthetic:generate"
    a = generate(name, suite="tabletop-qa", n=9, seed=0, out_dir=tmp_path / "a", templates=["count"])
    assert len(a) == 9 and {s.metadata["template"] for s in a} == {"count"}
    held = generate(name, suite="tabletop-qa", n=6, seed=0, out_dir=tmp_path / "h", split="heldout")
    assert not {s.id for s in held} & {s.id for s in generate(name, suite="tabletop-qa", n=6, seed=0,
                                                              out_dir=tmp_path / "t")}
    with pytest.raises(DataError, match="templates"):
        generate(name, suite="replay", n=3, seed=0, out_dir=tmp_path / "r", templates=["count"])


def test_prepare_and_read_data(tmp_path: Path) -> None:
    cfg = DataSettings(generator="tests.training.synthetic:generate", n_train=6, n_heldout=3, n_general=2,
                       image_size=64)
    prepare_data(cfg, tmp_path / "data", progress=False)
    d = read_data(tmp_path / "data")
    assert [len(d[k]) for k in ("train", "heldout", "general", "general_eval")] == [6, 3, 2, 2]
    assert all(s.metadata["template"] == "colour" for s in d["general"] + d["general_eval"])  # the replay suite
    assert Path(d["train"][0].images[0]).is_file()


@pytest.mark.parametrize("split", ["heldout", "validation"])
def test_the_forgetting_check_scores_general_samples_no_phase_trains_on(tmp_path: Path, split: str) -> None:
    cfg = DataSettings(generator="tests.training.synthetic:generate", n_train=2, n_heldout=2, n_general=5,
                       image_size=64, eval_split=split)
    prepare_data(cfg, tmp_path / "data", progress=False)
    d = read_data(tmp_path / "data")
    trained = {s.id for s in d["general"]} | {s.id for s in pretrain_data(cfg, 12, 0.0, tmp_path / "pre")}
    assert len(d["general_eval"]) == 5 and not {s.id for s in d["general_eval"]} & trained
    assert general_eval_path(tmp_path / "data") == tmp_path / "data" / "general_eval.jsonl"


def test_the_forgetting_checks_samples_do_not_shape_the_tiny_tokenizer(tmp_path: Path) -> None:
    cfg = DataSettings(generator="tests.training.synthetic:generate", n_train=2, n_heldout=2, n_general=3,
                       image_size=64)
    prepare_data(cfg, tmp_path / "data", progress=False)
    with_eval = tokenizer_corpus(tmp_path / "data")
    (tmp_path / "data" / "general_eval.jsonl").unlink()
    assert with_eval == tokenizer_corpus(tmp_path / "data")


def test_a_general_file_without_general_eval_is_scored_as_recall_and_says_so(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    gen = DataSettings(generator="tests.training.synthetic:generate", n_train=2, n_heldout=2, n_general=3,
                       image_size=64)
    prepare_data(gen, tmp_path / "src", progress=False)
    general = str(tmp_path / "src" / "general.jsonl")
    cfg = DataSettings(generator="tests.training.synthetic:generate", n_train=2, n_heldout=2, image_size=64,
                       general=general)
    prepare_data(cfg, tmp_path / "data", progress=False)
    assert read_data(tmp_path / "data")["general_eval"] == []
    assert general_eval_path(tmp_path / "data") == tmp_path / "data" / "general.jsonl"
    assert "set data.general_eval" in caplog.text
    own = DataSettings(generator="tests.training.synthetic:generate", n_train=2, n_heldout=2, image_size=64,
                       general=general, general_eval=str(tmp_path / "src" / "general_eval.jsonl"))
    prepare_data(own, tmp_path / "own", progress=False)
    assert [s.id for s in read_data(tmp_path / "own")["general_eval"]] == \
        [s.id for s in read_data(tmp_path / "src")["general_eval"]]


def test_pretrain_task_samples_come_from_the_named_templates(tmp_path: Path) -> None:
    cfg = DataSettings(generator="tests.training.synthetic:generate", general_suite="replay", image_size=64,
                       templates=["colour", "count"])
    mixed = pretrain_data(cfg, 8, 0.5, tmp_path / "a")
    named = pretrain_data(cfg, 8, 0.5, tmp_path / "b", templates=["count"])
    task = [s for s in named if s.source != "replay"]
    assert len(task) == 4 and {s.metadata["template"] for s in task} == {"count"}
    assert {s.metadata["template"] for s in mixed if s.source != "replay"} == {"colour", "count"}


def test_horizon_units(samples: list) -> None:
    s = samples[0]
    assert horizon_of(s, "seconds") == s.metadata["horizon_s"]
    assert horizon_of(s, "frames") is None
    s.metadata["num_frames"] = 12
    assert horizon_of(s, "frames") == 12.0


def test_horizon_filter_in_the_loop(tmp_path: Path) -> None:
    from tests.training.conftest import TINY_OVERRIDES
    from training.metaloop import Metaloop
    from training.metaloop_config import load_metaloop_config

    cfg = load_metaloop_config(None, [*TINY_OVERRIDES, f"output_dir={tmp_path / 'h'}", "horizon_schedule=[30, 60]",
                                      "loops=2"])
    loop = Metaloop(cfg, progress=False)
    loop._step("prepare", loop._prepare)
    first, second = loop._candidates(1), loop._candidates(2)
    assert all(s.metadata["horizon_s"] <= 30 for s in first) and len(first) < len(second) < 24
    assert all(s.metadata["horizon_s"] <= 60 for s in second)


def test_training_and_dppo_eval_show_the_model_the_same_conversation(samples: list, tmp_path: Path) -> None:
    """A sample with images and a video clip: the GRPO prompt and the SFT row built by training, and the request
    ``dppo eval`` (the tabletop_qa task through the benchmark runner) sends, are one conversation, pixels included."""
    import numpy as np
    from PIL import Image

    from benchmarks.backends.fake import FakeBackend
    from benchmarks.runner import RunSettings, run
    from benchmarks.task import TaskManager
    from dppo_embodied.conversation import Conversation
    from dppo_embodied.types import VideoRef, write_samples
    from training.phases.grpo import grpo_rows
    from training.phases.sft import sft_rows

    frames = tmp_path / "clip"
    frames.mkdir()
    for i in range(10):
        Image.fromarray(np.full((16, 24, 3), 20 * i, np.uint8)).save(frames / f"{i:03d}.png")
    chosen = [samples[0], samples[1]]
    chosen[1].video = VideoRef(str(frames), fps=5, start=0.2, end=1.6)
    write_samples(chosen, tmp_path / "qa" / "heldout.jsonl")
    seen = {}

    def capture(request):  # type: ignore[no-untyped-def]
        seen[request.id] = request.conversation
        return "<answer>A</answer>"

    run(TaskManager().resolve("tabletop_qa"), FakeBackend(responder=capture),
        RunSettings(out=tmp_path / "out", data_root=tmp_path, data_paths={"tabletop_qa": str(tmp_path / "qa")},
                    frames=3, progress=False))
    loader = MediaLoader(frames=3)
    rl = {r["sample_id"]: r for r in grpo_rows(chosen, loader)}
    sft = sft_rows([(s, oracle_target(s)) for s in chosen], loader)
    for s, sft_row in zip(chosen, sft, strict=True):
        evaluated = seen[s.id]
        for row in (rl[s.id], sft_row):
            assert row["prompt"] == evaluated.chat_messages()
            trained = Conversation(prompt_text(s), row["images"])
            assert trained.signature(with_pixels=True) == evaluated.signature(with_pixels=True)
    assert len(seen[chosen[1].id].images) == 3 + len(chosen[1].images)  # video frames first, then the images
