"""Adapters read each benchmark's real layout, build the exact official prompts, and name the layout when it is
missing; the task YAMLs are typed and complete."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks.backends.fake import FakeBackend
from benchmarks.data import DatasetLayoutError
from benchmarks.runner import RunSettings, load_docs, run
from benchmarks.task import TaskManager, TaskSpec
from dppo_embodied.config import from_dict
from dppo_embodied.errors import ConfigError, UnknownNameError
from dppo_embodied.rendering import prompt_text
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
        assert f"hf download {spec.dataset_id} --repo-type dataset" in msg


def test_official_prompts(tmp_path: Path) -> None:
    blink = load_docs(TM.get("blink"), fx.make_blink(tmp_path / "blink"), ("counting", "jigsaw"))
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
    cos = load_docs(TM.get("cosmos"), fx.make_cosmos(tmp_path / "cos"), ("robovqa", "robofail"))[0]
    assert cos.prompt == ("Is the task done?\n(A) yes\n(B) no\n"
                          "Answer with the option's letter from the given choices directly.")
    assert cos.video is not None and cos.video.path.endswith("robofail/clips/robofail_0.mp4")
    ego = load_docs(TM.get("egoschema_subset"), fx.make_egoschema(tmp_path / "ego"))[0]
    assert ego.prompt == ("What is c doing 0?\nA. option a\nB. option b\nC. option c\nD. option d\nE. option e\n"
                          "Answer with the option's letter from the given choices directly.")
    robo = load_docs(TM.get("robo_spatial"), fx.make_robo_spatial(tmp_path / "robo"), ("context",))[0]
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
    assert all(d.prompt == prompt_text(d.target) for d in docs)  # the one sample prompt, as training renders it
    assert docs[0].prompt.endswith("(A) red block\n(B) blue ball\nAnswer in <answer></answer>.")
    answers = {"qa/0": "<think>the ball is nearer</think><answer>B</answer>", "qa/1": "There are 4 blocks."}
    res = run(TM.resolve("tabletop_qa"), FakeBackend(responder=lambda r: answers[r.id]),
              RunSettings(out=tmp_path / "out", data_root=tmp_path, progress=False))
    entry = res["tabletop_qa"]
    assert entry["overall"] == 50.0 and entry["details"]["format_rate"] == 50.0
    assert entry["capabilities"] == {"spatial_geometric": 100.0, "quantitative_numerical": 0.0}
    rows = [json.loads(x) for x in (tmp_path / "out" / "tabletop_qa" / "samples.jsonl").read_text().splitlines()]
    assert rows[0]["extra"]["success"] is True and rows[1]["parsed"] == 4
    one_file = run(TM.resolve("tabletop_qa"), FakeBackend(responder=lambda r: answers[r.id]),
                   RunSettings(out=tmp_path / "out2", data_paths={"tabletop_qa": str(next(root.rglob("*.jsonl")))},
                               scorer_options={"tabletop_qa": {"score": "success"}}, progress=False))
    assert one_file["tabletop_qa"]["n"] == len(docs) and one_file["tabletop_qa"]["overall"] == 50.0
    assert one_file["tabletop_qa"]["scorer_options"]["score"] == "success"


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


def test_vllm_backend_gives_each_request_its_own_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    """vLLM cannot be installed here: a stand-in module records what the backend hands ``LLM.chat`` (vLLM takes
    one ``SamplingParams`` per prompt)."""
    import sys
    import types

    from benchmarks.backends.vllm import VLLMBackend
    from dppo_embodied.conversation import Conversation
    from dppo_embodied.generation import ChatRequest, GenerationSettings

    calls: list = []

    class LLM:
        def __init__(self, **kw: object) -> None:
            pass

        def chat(self, messages: list, params: object, use_tqdm: bool = False) -> list:
            calls.append(params)
            return [types.SimpleNamespace(outputs=[types.SimpleNamespace(text="ok")]) for _ in messages]

    fake = types.ModuleType("vllm")
    fake.LLM, fake.SamplingParams = LLM, lambda **kw: kw
    monkeypatch.setitem(sys.modules, "vllm", fake)
    settings = GenerationSettings(max_tokens=4, temperature=1.0)
    reqs = [ChatRequest(Conversation(f"q{i}"), settings, seed=s) for i, s in enumerate((11, 12, None))]
    out: dict[int, object] = {}
    VLLMBackend("some/model").generate(reqs, lambda i, r: out.__setitem__(i, r))
    assert out == {0: "ok", 1: "ok", 2: "ok"}
    assert [p["seed"] for p in calls[0]] == [11, 12, None] and all(p["temperature"] == 1.0 for p in calls[0])


def test_dppo_list_tasks(capsys: pytest.CaptureFixture) -> None:
    from dppo_embodied.listing import main as list_main

    assert list_main(["tasks"]) == 0
    out = capsys.readouterr().out
    assert "pelican" in out and "tabletop_closed_loop" in out and "egoplan_bench2" in out


NOT_UTF8 = b'{"id": "bad", "question": "caf\xe9"}'


def _append(path: Path, *lines: bytes) -> None:
    with path.open("ab") as f:
        f.write(b"".join(line + b"\n" for line in lines))


def _hostile_erqa(root: Path) -> None:
    fx.make_erqa(root)
    _append(root / "erqa.jsonl", NOT_UTF8, b'{"question": "q", "answer": "A", "images": "a.jpg"}', b"[1, 2]",
            b"[" * 50_000)


def _hostile_where2place(root: Path) -> None:
    fx.make_where2place(root)
    _append(root / "point_questions.jsonl", NOT_UTF8, b'{"question_id": 7, "image": "x.jpg", "text": 5}')


def _hostile_vsibench(root: Path) -> None:
    rows = [{"id": 1, "dataset": "scannet", "scene_name": "s0", "question_type": "object_counting",
             "question": "How many chairs?", "ground_truth": "4", "options": None}]
    fx.write_jsonl(root / "test.jsonl", rows)
    fx.write_card(root, [{"config_name": "full", "default": True,
                          "data_files": [{"split": "test", "path": "test.jsonl"}]}])
    _append(root / "test.jsonl", NOT_UTF8, b'{"id": 3, "question_type": "route_planning", "options": null}')


def _hostile_phyx(root: Path) -> None:
    fx.write_card(root, [{"config_name": "data_for_llms_eval",
                          "data_files": [{"split": "phyx_mini_mc", "path": "data_for_llms_eval/phyx_mini_mc.jsonl"}]}])
    fx.write_jsonl(root / "data_for_llms_eval" / "phyx_mini_mc.jsonl",
                   [{"index": 1, "question": "q", "image": base64.b64encode(fx.png_bytes()).decode(), "answer": "A"}])
    _append(root / "data_for_llms_eval" / "phyx_mini_mc.jsonl", NOT_UTF8)


def _hostile_emb_spatial(root: Path) -> None:
    fx.make_emb_spatial(root)
    rows = json.loads((root / "embspatial_bench.json").read_text())
    good = rows[0]
    rows += ["not a row", {**good, "question_id": "inf", "answer": float("inf")},
             {**good, "question_id": "nine", "answer": 9}, {**good, "answer": 1}]  # the last repeats mp3d_0
    fx.write_json(root / "embspatial_bench.json", rows)


def _hostile_omni_spatial(root: Path) -> None:
    fx.make_omni_spatial(root)
    path = root / "OmniSpatial-test" / "data.json"
    rows = json.loads(path.read_text())
    fx.write_json(path, [*rows, [1, 2], {**rows[0], "id": "9_0", "answer": 7}])


def _hostile_ref_spatial(root: Path) -> None:
    fx.save_image(root / "location" / "a.png")
    fx.write_json(root / "location" / "question.json", [
        {"id": 1, "prompt": "Point.", "suffix": "(x, y)", "image": "a.png", "mask": "a.png"}, 5])


def _hostile_mvbench(root: Path) -> None:
    fx.make_mvbench(root)
    path = root / "json" / "action_sequence.json"
    rows = json.loads(path.read_text())
    cands = [f"c{k}" for k in range(30)]
    rows += [{"video": "v.mp4", "question": "q", "candidates": cands, "answer": "c28"},
             {**rows[0], "start": "soon"}]
    fx.write_json(path, rows)


def _hostile_egoplan(root: Path) -> None:
    ok = {"sample_id": "s1", "task_goal": "make tea", "choice_a": "a", "choice_b": "b", "choice_c": "c",
          "choice_d": "d", "golden_choice_idx": "A"}
    fx.write_json(root / "EgoPlan-Bench2.json", [ok, {**ok, "sample_id": "s2", "start": "abc"}, 7])


def _hostile_egoschema(root: Path) -> None:
    opts = [f"{c}. o" for c in "ABCDE"]
    fx.write_jsonl(root / "Subset" / "test.jsonl",
                   [{"video_idx": "v0", "question": "q", "option": opts, "answer": "0"}])
    fx.write_card(root, [{"config_name": "Subset", "data_files": [{"split": "test", "path": "Subset/test.jsonl"}]}])
    _append(root / "Subset" / "test.jsonl", NOT_UTF8, b'{"video_idx": "v1", "question": "q", "option": 5}')


def _hostile_cosmos(root: Path) -> None:
    fx.make_cosmos(root, subsets=("robovqa",))
    path = root / "robovqa" / "robovqa_benchmark_qa_pairs.json"
    fx.write_json(path, [*json.loads(path.read_text()), "not a row", {"video": "v", "qa_pairs": {"index2ans": 5}}])


# task, dataset maker, ids that must be built, ids that must fail -> a piece of their reason
HOSTILE = [
    ("erqa", _hostile_erqa, {"erqa/0", "erqa/1", "erqa/2"},
     {"erqa/3": "erqa.jsonl:4: malformed row: not UTF-8", "erqa/4": "'images' must be a list",
      "erqa/5": "expected a JSON object", "erqa/6": "RecursionError"}),
    ("where2place", _hostile_where2place, {"0", "1", "2"},
     {"point_questions/3": "point_questions.jsonl:4: malformed row: not UTF-8", "7": "string 'image' and 'text'"}),
    ("vsibench", _hostile_vsibench, {"1"}, {"test/1": "test.jsonl:2: malformed row: not UTF-8", "3": "KeyError"}),
    ("phyx_mini_mc", _hostile_phyx, {"1"}, {"phyx_mini_mc/1": "not UTF-8"}),
    ("emb_spatial_bench", _hostile_emb_spatial, {"mp3d_0", "mp3d_1", "mp3d_2"},
     {"embspatial_bench/3": "malformed row 3 of embspatial_bench.json", "inf": "OverflowError",
      "nine": "answer index 9 is not one of the 4",
      "mp3d_0#dup2": "duplicate sample id 'mp3d_0'"}),
    ("omni_spatial", _hostile_omni_spatial, {"0_0", "1_0"},
     {"data/2": "malformed row 2 of data.json", "9_0": "answer index 7"}),
    ("ref_spatial_bench", _hostile_ref_spatial, {"location/0"}, {"location/1": "malformed row 1"}),
    ("mvbench", _hostile_mvbench, {"action_sequence/0", "action_count/2"},
     {"action_sequence/3": "answer index 28 is not one of the 30", "action_sequence/4": "could not convert"}),
    ("egoplan_bench2", _hostile_egoplan, {"s1"}, {"s2": "could not convert", "EgoPlan-Bench2/2": "TypeError"}),
    ("egoschema_subset", _hostile_egoschema, {"v0"}, {"Subset/1": "not UTF-8", "v1": "TypeError"}),
    ("cosmos", _hostile_cosmos, {"robovqa_benchmark_qa_pairs/0", "robovqa_benchmark_qa_pairs/1"},
     {"robovqa_benchmark_qa_pairs/2": "TypeError", "robovqa_benchmark_qa_pairs/3": "TypeError"}),
]


@pytest.mark.parametrize(("task", "make", "good", "bad"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_one_bad_row_fails_alone(tmp_path: Path, task: str, make, good: set[str], bad: dict[str, str]) -> None:
    """A line that is not UTF-8 or not an object, a value of the wrong type or out of range, a repeated id: that
    row is a failed doc naming the reason, and every other row of the task is built."""
    root = tmp_path / task
    make(root)
    subtasks = {"ref_spatial_bench": ("location",), "mvbench": ("action_sequence", "action_count"),
                "cosmos": ("robovqa",)}.get(task)
    docs = {d.id: d for d in load_docs(TM.get(task), root, subtasks)}
    built = {i for i, d in docs.items() if d.error is None}
    assert good <= built
    for doc_id, needle in bad.items():
        assert doc_id in docs and docs[doc_id].error and needle in docs[doc_id].error, (doc_id, docs.get(doc_id))
    assert len(docs) == len(built) + len(bad)


# ------------------------------------------------------------------------------------------ the id contract
def _drop(root: Path, rel: str, key: str) -> Path:
    """Rewrite a parquet or JSON fixture file without the id column ``key`` (to pin the positional fallback)."""
    path = root / rel
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        fx.write_parquet(path, [{k: v for k, v in r.items() if k != key} for r in pq.read_table(path).to_pylist()])
    else:
        fx.write_json(path, [{k: v for k, v in r.items() if k != key} for r in json.loads(path.read_text())])
    return root


def _egoplan(root: Path) -> Path:
    ok = {"task_goal": "make tea", "choice_a": "a", "choice_b": "b", "choice_c": "c", "choice_d": "d",
          "golden_choice_idx": "A"}
    fx.write_json(root / "EgoPlan-Bench2.json", [{**ok, "sample_id": 7}, {**ok, "sample_id": 9}, ok])
    return root


# task -> (fixture in the published layout, subtask selection, the first ids); the dataset's own id field where
# it has one (unique across the task), else <subset>/<0-based row> with subset = file stem or config/split name
FIRST_IDS: dict[str, tuple[Any, tuple[str, ...] | None, list[str]]] = {
    "mvbench": (fx.make_mvbench, ("action_sequence", "action_count"),
                ["action_sequence/0", "action_sequence/1", "action_sequence/2", "action_count/0"]),
    "egoschema": (fx.make_egoschema, None, ["vid0", "vid1", "vid2"]),
    "egoschema_subset": (fx.make_egoschema, None, ["vid0", "vid1", "vid2"]),
    "egoschema_subset@no_id": (lambda r: _drop(fx.make_egoschema(r), "Subset/test-00000-of-00001.parquet",
                                               "video_idx"), None, ["Subset/0", "Subset/1"]),
    "where2place": (fx.make_where2place, None, ["0", "1", "2"]),
    "phyx_mini_mc": (fx.make_phyx, None, ["100", "101"]),
    "phyx_mini_mc@no_id": (lambda r: _drop(fx.make_phyx(r), "data_llms_eval/PhyX_mini_MC.parquet", "index"), None,
                           ["phyx_mini_mc/0", "phyx_mini_mc/1"]),
    "vsibench": (fx.make_vsibench, None, ["1", "2", "3"]),
    "vsibench@no_id": (lambda r: _drop(fx.make_vsibench(r), "test-00000-of-00001.parquet", "id"), None,
                       ["test/0", "test/1", "test/2"]),
    "omni_spatial": (fx.make_omni_spatial, None, ["0_0", "1_0"]),
    "blink": (fx.make_blink, ("counting", "jigsaw"), ["val_Counting_1", "val_Counting_2", "val_Counting_3",
                                                      "val_Jigsaw_1"]),
    "blink@no_id": (lambda r: _drop(fx.make_blink(r), "Counting/val-00000-of-00001.parquet", "idx"), ("counting",),
                    ["Counting/0", "Counting/1"]),
    # RefSpatial's `id` restarts at 1 in every split: not unique across the task, so <split>/<row>
    "ref_spatial_bench": (fx.make_ref_spatial, ("location", "placement"), ["location/0", "location/1",
                                                                           "placement/0"]),
    "robo_spatial": (fx.make_robo_spatial, ("context", "compatibility"),
                     ["context/0", "context/1", "compatibility/0", "compatibility/1"]),
    "emb_spatial_bench": (fx.make_emb_spatial, None, ["mp3d_0", "mp3d_1"]),
    "cosmos": (fx.make_cosmos, ("robofail", "robovqa"),
               ["robofail_benchmark_qa_pairs/0", "robofail_benchmark_qa_pairs/1", "robovqa_benchmark_qa_pairs/0"]),
    "erqa": (fx.make_erqa, None, ["erqa/0", "erqa/1"]),
    "egoplan_bench2": (_egoplan, None, ["7", "9", "EgoPlan-Bench2/2"]),
}


@pytest.mark.parametrize("case", sorted(FIRST_IDS))
def test_first_ids_follow_the_contract(case: str, tmp_path: Path) -> None:
    make, subtasks, first = FIRST_IDS[case]
    task = case.split("@")[0]
    docs = load_docs(TM.get(task), make(tmp_path / task), subtasks)
    assert [d.id for d in docs[: len(first)]] == first
    assert len({d.id for d in docs}) == len(docs)
