"""Dataset cards: the README's ``configs:`` front matter resolves to the same files and rows as
``datasets.load_dataset(local_dir, name=..., split=...)``; bad cards and incomplete snapshots are clear errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from benchmarks.cards import Card, DatasetLayoutError, card_for, parse_configs, read_card
from benchmarks.data import split_files, split_rows
from benchmarks.runner import load_docs
from benchmarks.task import TaskManager
from tests.benchmarks import fixtures as fx

TM = TaskManager()


def _card(root: Path, configs: list[dict[str, Any]]) -> Card:
    fx.write_card(root, configs)
    card = read_card(root)
    assert card is not None
    return card


# ------------------------------------------------------------------------------------------- the card syntax
def test_data_files_forms_as_datasets_reads_them(tmp_path: Path) -> None:
    for name in ("a.json", "b.json", "c.json", "d/x-0.parquet", "d/x-1.parquet", "d/.hidden.parquet"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("[]")
    card = _card(tmp_path, [
        {"config_name": "one", "data_files": "a.json"},                        # MVBench: a bare path -> train
        {"config_name": "many", "data_files": ["a.json", "b.json"]},            # a list of paths -> train
        {"config_name": "splits", "data_files": [{"split": "val", "path": "a.json"},
                                                 {"split": "test", "path": ["b.json", "c.json"]}]},
        {"config_name": "mapping", "data_files": {"test": "d/x-*"}, "default": True},
    ])
    assert card.names() == ["one", "many", "splits", "mapping"]
    assert card.config().name == "mapping"  # the one marked default
    assert card.files("one", "train") == [tmp_path / "a.json"]
    assert card.files("many", "train") == [tmp_path / "a.json", tmp_path / "b.json"]
    assert card.files("splits", "test") == [tmp_path / "b.json", tmp_path / "c.json"]
    assert card.files(None, "test") == [tmp_path / "d/x-0.parquet", tmp_path / "d/x-1.parquet"]  # sorted, no hidden


def test_default_config_like_datasets(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("[]")
    only = parse_configs([{"config_name": "x", "data_files": "a.json"}], "card", tmp_path)
    assert only.config().name == "x"  # a single config is the default
    named = parse_configs([{"config_name": "x", "data_files": "a.json"}, {"data_files": "a.json"}], "card", tmp_path)
    assert named.config().name == "default"
    two = parse_configs([{"config_name": "x", "data_files": "a.json"}, {"config_name": "y", "data_files": "a.json"}],
                        "card", tmp_path)
    with pytest.raises(DatasetLayoutError, match="no default config; name one of x, y"):
        two.config()


@pytest.mark.parametrize(("configs", "ask", "needle"), [
    ([{"config_name": "x", "data_files": "a.json"}], ("nope", "train"), "has no config 'nope'; it lists x"),
    ([{"config_name": "x", "data_files": "a.json"}], ("x", "test"), "has no split 'test'; it lists train"),
    ([{"config_name": "x", "data_files": [{"split": "test", "path": "gone/PhyX_MC.parquet"}]}], ("x", "test"),
     r"gone/PhyX_MC.parquet is missing: the dataset card \(.*README.md\) lists 'gone/PhyX_MC.parquet' for split "
     "'test'"),
    ([{"config_name": "x", "data_files": [{"split": "test", "path": "data/test-*"}]}], ("x", "test"),
     r"no file matches \['data/test-\*'\], which the dataset card"),
    ([{"config_name": "x", "data_files": [{"split": "a"}]}], None, r"must be \{split: ..., path: ...\}"),
    ([{"config_name": "x", "data_files": "a.json"}, {"config_name": "x", "data_files": "a.json"}], None,
     "config 'x' is listed twice"),
])
def test_bad_cards_name_the_card_and_what_it_says(tmp_path: Path, configs: list[dict[str, Any]],
                                                  ask: tuple[str, str] | None, needle: str) -> None:
    (tmp_path / "a.json").write_text("[]")
    fx.write_card(tmp_path, configs)
    with pytest.raises(DatasetLayoutError, match=needle):
        card = read_card(tmp_path)
        assert card is not None and ask is not None
        card.files(*ask)


def test_front_matter_errors(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("---\nconfigs: [\n")
    with pytest.raises(DatasetLayoutError, match="never closed"):
        read_card(tmp_path)
    (tmp_path / "README.md").write_text("---\nconfigs: [unclosed\n---\n")
    with pytest.raises(DatasetLayoutError, match="does not parse"):
        read_card(tmp_path)
    (tmp_path / "README.md").write_text("# no front matter\n")
    assert read_card(tmp_path) is None


def test_the_task_card_is_used_when_the_snapshot_has_no_readme(tmp_path: Path) -> None:
    root = fx.make_phyx(tmp_path / "phyx")
    (root / "README.md").unlink()
    spec = TM.get("phyx_mini_mc")
    card = card_for(root, spec.card, "phyx_mini_mc.yaml")
    assert card.source == "phyx_mini_mc.yaml"
    assert card.files("data_for_llms_eval", "phyx_mini_mc") == [root / "data_llms_eval" / "PhyX_mini_MC.parquet"]
    assert [d.id for d in load_docs(spec, root)] == ["100", "101"]
    # the README's card wins over the task's: a card naming another file is followed (and its absence reported)
    fx.write_card(root, [{"config_name": "data_for_llms_eval",
                          "data_files": [{"split": "phyx_mini_mc", "path": "elsewhere/mini.parquet"}]}])
    with pytest.raises(DatasetLayoutError, match=r"elsewhere/mini\.parquet is missing"):
        load_docs(spec, root)


def test_a_split_with_no_rows_is_an_error_naming_the_file(tmp_path: Path) -> None:
    root = fx.make_phyx(tmp_path / "phyx")
    fx.write_parquet(root / "data_llms_eval" / "PhyX_mini_MC.parquet", [])
    with pytest.raises(DatasetLayoutError, match=r"split 'phyx_mini_mc' of config 'data_for_llms_eval' has no rows "
                       r"in data_llms_eval/PhyX_mini_MC.parquet \(the files the dataset card, .*README.md, lists\)"):
        load_docs(TM.get("phyx_mini_mc"), root)


def test_the_old_guessed_phyx_layout_is_refused_with_the_card_path(tmp_path: Path) -> None:
    root = tmp_path / "phyx"
    fx.write_parquet(root / "data_for_llms_eval" / "phyx_mini_mc-00000-of-00001.parquet", [{"index": 1}])
    with pytest.raises(DatasetLayoutError, match=r"data_llms_eval/PhyX_mini_MC\.parquet is missing"):
        load_docs(TM.get("phyx_mini_mc"), root)


# ----------------------------------------------------------------------------------- the same as `datasets`
def _infer_layout(root: Path, files: dict[str, list[dict[str, Any]]]) -> None:
    for name, rows in files.items():
        fx.write_parquet(root / name, rows)


@pytest.mark.parametrize(("files", "splits"), [
    ({"data/context-00000-of-00001.parquet": [{"q": "a"}], "data/compatibility-00000-of-00001.parquet": [{"q": "b"}]},
     ["compatibility", "context"]),
    ({"test-00000-of-00001.parquet": [{"q": "a"}]}, ["test"]),
    ({"val/part.parquet": [{"q": "a"}], "train.parquet": [{"q": "b"}]}, ["validation"]),  # folder names first
    ({"stuff/everything.parquet": [{"q": "a"}]}, ["train"]),
])
def test_inferred_splits_match_datasets(tmp_path: Path, files: dict[str, list[dict[str, Any]]],
                                        splits: list[str]) -> None:
    datasets = pytest.importorskip("datasets")
    _infer_layout(tmp_path / "ds", files)
    (tmp_path / "ds" / "README.md").write_text("---\nlicense: mit\n---\n")  # a card without configs
    card = card_for(tmp_path / "ds")
    assert sorted(card.config().data_files) == splits
    ref = datasets.load_dataset(str(tmp_path / "ds"), cache_dir=str(tmp_path / "hf"))
    assert sorted(ref) == splits
    for split in splits:
        ours = [r for f in card.files(None, split) for r in fx_rows(f)]
        assert [r["q"] for r in ours] == ref[split]["q"]


def fx_rows(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


# task, fixture, config, split, a text column to compare, the files the card resolves to
CARD_CASES: list[tuple[str, Callable[[Path], Path], str | None, str, str, list[str]]] = [
    ("phyx_mini_mc", fx.make_phyx, "data_for_llms_eval", "phyx_mini_mc", "answer",
     ["data_llms_eval/PhyX_mini_MC.parquet"]),
    ("blink", fx.make_blink, "Counting", "val", "idx", ["Counting/val-00000-of-00001.parquet"]),
    ("mvbench", fx.make_mvbench, "action_sequence", "train", "question", ["json/action_sequence.json"]),
    ("cosmos", fx.make_cosmos, "robovqa", "benchmark", "video", ["robovqa/robovqa_benchmark_qa_pairs.json"]),
    ("ref_spatial_bench", fx.make_ref_spatial, None, "location", "prompt", ["data/location-00000-of-00001.parquet"]),
    ("egoschema_subset", fx.make_egoschema, "Subset", "test", "video_idx", ["Subset/test-00000-of-00001.parquet"]),
    ("vsibench", fx.make_vsibench, None, "test", "question", ["test-00000-of-00001.parquet"]),
    ("robo_spatial", fx.make_robo_spatial, None, "compatibility", "answer",
     ["data/compatibility-00000-of-00001.parquet"]),
]


@pytest.mark.parametrize(("task", "make", "config", "split", "column", "files"), CARD_CASES,
                         ids=[c[0] for c in CARD_CASES])
def test_card_resolution_matches_datasets(tmp_path: Path, task: str, make: Callable[[Path], Path], config: str | None,
                                          split: str, column: str, files: list[str]) -> None:
    """The README card (or, without one, the task's card / the file names) gives the rows
    ``datasets.load_dataset(folder, name=config, split=split)`` gives, in the same order."""
    datasets = pytest.importorskip("datasets")
    root = make(tmp_path / task)
    spec = TM.get(task)
    fx.complete_snapshot(root, spec.card)  # `datasets` resolves every file the card lists, not only this split's
    assert [f.relative_to(root).as_posix() for f, _ in split_files(spec, root, split, config)] == files
    ours = split_rows(spec, root, split, config)
    ref = datasets.load_dataset(str(root), name=config, split=split, cache_dir=str(tmp_path / "hf"))
    assert len(ours) == len(ref) > 0
    assert [r[column] for r in ours] == ref[column]
