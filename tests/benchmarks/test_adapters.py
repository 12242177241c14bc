"""Adapters read each benchmark's real layout, build the exact official prompts, and name the layout when it is
missing; the task YAMLs are typed and complete."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.backends.fake import FakeBackend
from benchmarks.data import DatasetLayoutError
from benchmarks.runner import RunSettings, load_docs, run
from benchmarks.task import TaskManager, TaskSpec
from dppo_embodied.config import from_dict
from dppo_embodied.errors import ConfigError, UnknownNameError
from dppo_embodied.taxonomy import SLUGS
from dppo_embodied.types import AnswerType, EmbodiedSample, write_samples
from tests.benchmarks import fixtures as fx

TM = TaskManager()
PELICAN = ["mvbench", "egoschema", "where2place", "phyx_mini_mc", "vsibench", "omni_spatial", "blink",
           "ref_spatial_bench", "robo_spatial", "emb_spatial_bench", "cosmos", "erqa"]


def test_pelican_group_is_the_twelve_official_tasks() -> None:
    assert TM.groups["pelican"].tasks == PELICAN
    assert {s.spec.task for s in TM.resolve("pelican")} == set(PELICAN)
    assert TM.resolve("blink_jigsaw,blink_counting")[0].subtasks == ("counting", "jigsaw")
    with pytest.raises(UnknownNameError, match="valid choices"):
        TM.resolve("mvbench_nope")


def test_every_task_maps_capabilities_to_the_taxonomy() -> None:
    covered = set()
    for spec in TM.tasks.values():
        for sub in spec.subtasks or [None]:
            caps = spec.capabilities_of(sub)
            assert spec.task == "tabletop_qa" or caps, f"{spec.task}/{sub} has no capability"
            covered.update(caps)
        assert spec.layout, f"{spec.task} does not describe its layout"
    assert covered == set(SLUGS)


def test_task_yaml_is_typed() -> None:
    with pytest.raises(ConfigError, match="unknown key"):
        from_dict(TaskSpec, {"task": "x", "adapter": "erqa", "scorer": "erqa", "doc_to_text": "!function x"})
    with pytest.raises(ConfigError, match="capabilit"):
        from_dict(TaskSpec, {"task": "x", "adapter": "erqa", "scorer": "erqa", "capabilities": {"default": ["fly"]}})


@pytest.mark.parametrize("task", [*PELICAN, "egoschema_subset", "egoplan_bench2", "tabletop_qa"])
def test_missing_dataset_folder_names_the_expected_layout(task: str, tmp_path: Path) -> None:
    spec = TM.get(task)
    with pytest.raises(DatasetLayoutError) as err:
        load_docs(spec, tmp_path / "absent")
    msg = str(err.value)
    assert "Expected layout" in msg and spec.layout.split()[0] in msg
    if spec.dataset_id:
        assert f"huggingface-cli download {spec.dataset_id}" in msg


def test_official_prompts(tmp_path: Path) -> None:
    blink = load_docs(TM.get("blink"), fx.make_blink(tmp_path / "blink"))
    jig = next(d for d in blink if d.subtask == "jigsaw")
    assert jig.prompt.startswith("Disclaimer: This is not to make unfair assumptions")
    assert jig.prompt.endswith("(B) 3The last line of your response should be of the following format: "
                               "'Answer: $LETTER' (without quotes) where LETTER is one of options.")
    assert len(jig.images) == 1 and isinstance(jig.images[0], bytes)
    emb = load_docs(TM.get("emb_spatial_bench"), fx.make_emb_spatial(tmp_path / "emb"))[0]
    assert emb.prompt == ("Which object is left of the bed?\nOptions:\nA.lamp\nB.chair\nC.table\nD.sofa"
                          "Answer with the option's letter from the given choices directly.")
    vsi = {d.id: d for d in load_docs(TM.get("vsibench"), fx.make_vsibench(tmp_path / "vsi"))}
    assert vsi["1"].prompt == ("These are frames of a video.\nHow many chairs?\n"
                               "Please answer the question using a single word or phrase.")
    assert vsi["3"].prompt == ("These are frames of a video.\nWhere is the bed?\nOptions:\nA. left\nB. right\n"
                               "Answer with the option's letter from the given choices directly.")
    cos = load_docs(TM.get("cosmos"), fx.make_cosmos(tmp_path / "cos"))[0]
    assert cos.prompt == ("Is the task done?\n(A) yes\n(B) no\n"
                          "Answer with the option's letter from the given choices directly.")
    assert cos.video is not None and cos.video.path.endswith("robofail/clips/robofail_0.mp4")
    ego = load_docs(TM.get("egoschema_subset"), fx.make_egoschema(tmp_path / "ego"))[0]
    assert ego.prompt == ("What is c doing 0?\nA. option a\nB. option b\nC. option c\nD. option d\nE. option e\n"
                          "Answer with the option's letter from the given choices directly.")
    robo = load_docs(TM.get("robo_spatial"), fx.make_robo_spatial(tmp_path / "robo"))[0]
    assert robo.prompt.startswith("Find free space right of the mug.Your task is to identify specific points")
    assert "Answer: [(x1, y1), (x2, y2), ..., (xn, yn)]" in robo.prompt
    omni = load_docs(TM.get("omni_spatial"), fx.make_omni_spatial(tmp_path / "omni"))[0]
    assert omni.prompt.endswith("additional information.\n\n\nWhich is on my left?\nA. cup\nB. book\nC. pen\nD. lamp")
    assert omni.capabilities == ["spatial_geometric", "multi_object_consistency"]
    phyx = load_docs(TM.get("phyx_mini_mc"), fx.make_phyx(tmp_path / "phyx"))
    assert [d.id for d in phyx] == ["100", "101"]
    assert phyx[0].prompt == "A ball falls. Which graph? A: x B: y C: z D: w"


def test_egoplan_layout(tmp_path: Path) -> None:
    root = tmp_path / "egoplan"
    rows = [{"sample_id": "s1", "task_goal": "make tea.", "choice_a": "boil water", "choice_b": "open fridge",
             "choice_c": "wash cup", "choice_d": "sit down", "golden_choice_idx": "A", "scenario": "kitchen",
             "video": "videos/s1.mp4"}, {"sample_id": "s2"}]
    fx.write_json(root / "EgoPlan-Bench2.json", rows)
    docs = load_docs(TM.get("egoplan_bench2"), root)
    assert docs[0].prompt.startswith("Considering the progress shown in the video and my current observation in the "
                                     "last frame, what action should I take next in order to make tea?\nA. boil water")
    assert docs[0].target == "A" and docs[1].error and "malformed" in docs[1].error


def _samples(folder: Path) -> Path:
    img = fx.save_image(folder / "img" / "a.png")
    samples = [
        EmbodiedSample(id="qa/0", source="tabletop-qa", question="Which object is closest to the gripper?",
                       answer="B", answer_type=AnswerType.MCQ, options=["red block", "blue ball"],
                       images=[str(img)], capabilities=["spatial_geometric"]),
        EmbodiedSample(id="qa/1", source="tabletop-qa", question="How many blocks are on the table?", answer=3,
                       answer_type=AnswerType.COUNT, images=[str(img)], capabilities=["quantitative_numerical"]),
    ]
    write_samples(samples, folder / "heldout.jsonl")
    return folder


def test_tabletop_qa_uses_the_training_prompt_and_metrics(tmp_path: Path) -> None:
    root = _samples(tmp_path / "tabletop_qa")
    docs = load_docs(TM.get("tabletop_qa"), root)
    try:
        from training.sample_io import prompt_text
    except ImportError:  # pragma: no cover - the training package is optional here
        prompt_text = None
    if prompt_text is not None:
        assert all(d.prompt == prompt_text(d.target) for d in docs)
    assert docs[0].prompt.endswith("(A) red block\n(B) blue ball\nAnswer in <answer></answer>.")
    answers = {"qa/0": "<think>the ball is nearer</think><answer>B</answer>", "qa/1": "There are 4 blocks."}
    res = run(TM.resolve("tabletop_qa"), FakeBackend(responder=lambda r: answers[r.id]),
              RunSettings(out=tmp_path / "out", data_root=tmp_path, progress=False))
    entry = res["tabletop_qa"]
    assert entry["overall"] == 50.0 and entry["details"]["format_rate"] == 50.0
    assert entry["capabilities"] == {"spatial_geometric": 100.0, "quantitative_numerical": 0.0}
    rows = [json.loads(x) for x in (tmp_path / "out" / "tabletop_qa" / "samples.jsonl").read_text().splitlines()]
    assert rows[0]["extra"]["success"] is True and rows[1]["parsed"] == 4


def test_rows_come_from_the_datasets_cache_when_the_folder_is_missing(tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    from dataclasses import replace

    source = fx.make_vsibench(tmp_path / "hub_copy")  # stands for a dataset the `datasets` library can load offline
    spec = replace(TM.get("vsibench"), dataset_id=str(source))
    docs = load_docs(spec, tmp_path / "not_downloaded")
    assert [d.id for d in docs] == ["1", "2", "3", "4", "5", "6"]


def test_vllm_backend_names_the_install() -> None:
    pytest.importorskip("PIL")
    from benchmarks.backends import make_backend
    from dppo_embodied.errors import DependencyNotInstalled
    from dppo_embodied.imports import is_available

    if is_available("vllm"):
        pytest.skip("vllm is installed here")
    with pytest.raises(DependencyNotInstalled, match="pip install"):
        make_backend("vllm", "some/model")


def test_dppo_list_tasks(capsys: pytest.CaptureFixture) -> None:
    from dppo_embodied.listing import main as list_main

    assert list_main(["tasks"]) == 0
    out = capsys.readouterr().out
    assert "pelican" in out and "tabletop_closed_loop" in out and "egoplan_bench2" in out
