"""The metaloop end to end on the tiny model: artifacts, ablation modes, NaN loss, bad media, teacher down, resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dppo_embodied.errors import ConfigError, TrainingError
from dppo_embodied.io import read_json
from tests.training.conftest import TINY_OVERRIDES
from training.algorithm.data_sources import read_data
from training.algorithm.rewards import success_of
from training.algorithm.sample_io import oracle_target
from training.metaloop import Metaloop
from training.metaloop_config import load_metaloop_config

DPPO_STEPS = ["prepare", "eval_base", "k1/difficulty", "k1/rl", "k1/eval_rl", "k1/diagnosis", "k1/sft", "k1/eval"]


def _cfg(out: Path, *extra: str):
    return load_metaloop_config(None, [*TINY_OVERRIDES, f"output_dir={out}", *extra])


def test_tiny_metaloop_end_to_end_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from training.cli import main

    recipe = tmp_path / "tiny.yaml"
    recipe.write_text("name: tiny\nloops: 1\n")
    out = tmp_path / "run"
    assert main(["--config", str(recipe), "--output-dir", str(out), "--no-progress", *TINY_OVERRIDES]) == 0
    captured = capsys.readouterr()
    assert "held-out success (0-100): base" in captured.out
    summary = read_json(out / "summary.json")
    assert set(summary["base"]) == set(summary["final"]) and "overall" in summary["base"]
    caps = {"perception_grounding", "quantitative_numerical", "spatial_geometric"}
    assert set(summary["base"]) - {"overall"} == caps
    assert summary["n_heldout"] == 24 and [p["step"] for p in summary["curve"]] == ["base", "k1-rl", "k1"]
    state = read_json(out / "state.json")
    assert state["completed"] == DPPO_STEPS
    # SR table and buffer persisted; RL rewards captured by sample id for buffer samples only
    table, buf = read_json(out / "sr" / "k1.json"), read_json(out / "buffers" / "k1.json")
    assert len(table) == 24 and all(0 <= r["sr"] <= 1 and r["n"] == 4 for r in table.values())
    assert set(buf["rl"]) | set(buf["weak"]) | set(buf["trivial"]) | set(buf["capped"]) == set(table)
    recs = [json.loads(x) for x in (out / "rl" / "k1" / "rewards.rank0.jsonl").read_text().splitlines()]
    if buf["rl"]:
        assert recs and {r["sample_id"] for r in recs} <= set(buf["rl"])
    phase = read_json(out / "rl" / "k1" / "phase.json")
    assert phase["reports"] and all("ts_per_task" in r for r in phase["reports"])
    assert (out / "reports" / "weakness_k1.md").read_text().startswith("# Weakness report, loop 1")
    assert (out / "curve.png").stat().st_size > 1000
    md = (out / "summary.md").read_text()  # the change each phase made, read off the curve
    rl = summary["curve"][1]
    assert f"| k1-rl | {rl['overall']:.1f} ({rl['overall'] - summary['curve'][0]['overall']:+.1f}) |" in md
    assert state["model_path"] == "ckpt/k1-sft" and (out / state["model_path"] / "config.json").is_file()
    # one score scale (0-100), provenance, the run's own TensorBoard run
    assert summary["scale"] == "0-100" and summary["checkpoint"] == "ckpt/k1-sft"
    assert all(0 <= v <= 100 for v in summary["final"].values())
    prov = summary["provenance"]
    assert prov["versions"]["torch"] and prov["duration_s"] > 0 and prov["sessions"][0]["command"] == prov["command"]
    assert "k1/sft" in prov["step_seconds"]
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert read_json(out / "eval" / "k1" / "results.json")["provenance"]["versions"]["dppo-embodied"]
    import shutil

    copy = shutil.copytree(out, tmp_path / "copied")  # a copied run loads its own checkpoints
    assert Metaloop(_cfg(copy, "name=tiny"), resume=True).model_dir == str(copy / "ckpt" / "k1-sft")
    # finished runs refuse to start again without --resume; with it they return at once
    with pytest.raises(TrainingError, match="--resume"):
        Metaloop(_cfg(out, "name=tiny"))
    with pytest.raises(TrainingError, match="belongs to run 'tiny'"):
        Metaloop(_cfg(out), resume=True)
    assert Metaloop(_cfg(out, "name=tiny"), resume=True, progress=False).run()["final"] == summary["final"]


@pytest.mark.parametrize("mode,steps", [
    ("grpo_only", ["prepare", "eval_base", "k1/difficulty", "k1/rl", "k1/eval"]),
    ("sft_only", ["prepare", "eval_base", "k1/sft", "k1/eval"]),
    ("sft_pool", ["prepare", "eval_base", "k1/sft", "k1/eval"]),
    ("sft_then_rl", ["prepare", "eval_base", "k1/sft", "k1/difficulty", "k1/rl", "k1/eval"]),
])
def test_ablation_modes(tmp_path: Path, mode: str, steps: list[str]) -> None:
    out = tmp_path / mode
    summary = Metaloop(_cfg(out, f"mode={mode}", "sft.teacher_samples=5", "teacher.budget=4"), progress=False).run()
    state = read_json(out / "state.json")
    assert state["completed"] == steps
    # teacher calls: none without SFT; the random-sample baselines stay within the budget; sft_pool pays per sample
    expected = {"grpo_only": 0, "sft_only": 4, "sft_then_rl": 4, "sft_pool": 24}[mode]
    assert summary["teacher_calls"] == state["teacher_calls"] == expected
    if mode != "grpo_only":
        ledger = read_json(out / "teacher_ledger.json")
        if mode in ("sft_only", "sft_then_rl"):
            assert ledger["spent"] == 4 and ledger["refused"] == 1 and len(ledger["targets"]) == 4
        # every paid target is the sample's oracle answer, not a rendering of the sample
        targets = ledger["targets"]
        pool = {s.id: s for s in read_data(out / "data")["train"]}
        assert targets and all(t == oracle_target(pool[i]) for i, t in targets.items() if i in pool)
        assert all(t.startswith("<answer>") and len(t) < 40 for t in targets.values())


def test_the_closing_rl_half_step_is_not_counted_as_a_metaloop(tmp_path: Path) -> None:
    out = tmp_path / "closing"
    summary = Metaloop(_cfg(out, "final_rl=true"), progress=False).run()
    assert read_json(out / "state.json")["completed"][-3:] == ["k2/difficulty", "k2/rl", "k2/eval"]
    assert summary["loops_done"] == 1 and summary["closing_rl"] is True
    assert [p["step"] for p in summary["curve"]][-1] == "k2"


def test_dppo_pays_the_teacher_for_every_sft_target(tmp_path: Path) -> None:
    out = tmp_path / "paid"
    summary = Metaloop(_cfg(out, "teacher.accuracy=0.5", "teacher.with_reasoning=true", "sft.assoc_max=3"),
                       progress=False).run()
    sft = read_json(out / "state.json")["values"]["k1/sft"]
    ledger = read_json(out / "teacher_ledger.json")
    # failures asked first, then at most 3 associated samples; a wrong (unverified) answer is paid but not trained on
    assert summary["teacher_calls"] == ledger["spent"] == len(ledger["targets"]) <= sft["asked"] + 3
    assert sft["verified"] == sum(1 for i, t in ledger["targets"].items() if t and i in set(
        read_json(out / "reports" / "weakness_k1.json")["failures"]))
    assert all(t is None or t.startswith("<think>") for t in ledger["targets"].values())


class _HalfRight:
    """A rollout engine that answers every other sample right (the tiny model never does), and the samples in
    ``once`` right in their first rollout only (partly solved: they stay in play after the difficulty step); the
    rest it passes on."""

    def __init__(self, engine: Any, right: dict[str, str], once: dict[str, str] | None = None) -> None:
        self._engine, self._right, self._once = engine, right, once or {}

    def generate(self, requests: list, keys: list, journal: Any = None) -> list:
        out = self._engine.generate(requests, keys, journal)
        return [f"<answer>{self._right[r.id]}</answer>" if r.id in self._right else
                f"<answer>{self._once[r.id]}</answer>" if r.id in self._once and str(k).endswith("#0") else t
                for r, k, t in zip(requests, keys, out, strict=True)]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


def test_dppo_trains_on_its_own_verified_rollouts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "self"
    loop = Metaloop(_cfg(out, "sft.self_weight=1", "sft.weak_max=2", "sft.assoc_max=1", "sft.synthesize_assoc=false"),
                    progress=False)
    real = Metaloop._engine

    def engine(self: Metaloop) -> Any:
        data = self._data()["train"]
        return _HalfRight(real(self), {s.id: s.answer for s in data[::2]}, {s.id: s.answer for s in data[1::4]})

    monkeypatch.setattr(Metaloop, "_engine", engine)
    summary = loop.run()
    state = read_json(out / "state.json")
    report = read_json(out / "reports" / "weakness_k1.json")
    train = {s.id: s for s in read_data(out / "data")["train"]}
    # the diagnosis keeps one rollout per solved sample, each passing the reward; the SFT phase trains on them free
    solved = {i for i, sr in report["sr"].items() if sr > 0}
    assert solved and set(report["verified"]) == solved
    assert all(success_of(train[i], t)[1] for i, t in report["verified"].items())
    assert state["values"]["k1/diagnosis"]["verified"] == len(solved)
    # ... and the difficulty step's rollouts add the candidates left out of RL as trivial (solved every time)
    table, buf = read_json(out / "sr" / "k1.json"), read_json(out / "buffers" / "k1.json")
    assert buf["trivial"] and all(success_of(train[i], table[i]["success_text"])[1] for i in buf["trivial"])
    pre_rl = {i for i, r in table.items() if r["success_text"]}
    assert set(buf["trivial"]) <= pre_rl and state["values"]["k1/sft"]["d_self"] == len(solved | pre_rl)
    assert summary["teacher_calls"] <= 3  # D_self pays nothing: two failures and one D_assoc sample were paid


def test_focus_steps_train_on_d_weak_alone_before_the_mix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import training.metaloop as metaloop

    calls: list[tuple[str, list[Any], int]] = []
    real = metaloop.run_sft

    def spy(model: Any, processor: Any, items: Any, **kw: Any) -> Any:
        calls.append((kw.get("phase", "SFT"), list(items), kw["max_steps"]))
        return real(model, processor, items, **kw)

    monkeypatch.setattr(metaloop, "run_sft", spy)
    out = tmp_path / "focus"
    Metaloop(_cfg(out, "sft.focus_steps=2", "sft.weak_max=3", "pretrain.steps=0"), progress=False).run()
    weak = set(read_json(out / "reports" / "weakness_k1.json")["failures"])
    (phase, focus, steps), (_, mixed, _) = calls
    # the focus trainer gets D_weak rows only, steps x batch of them, first; the mixed phase follows as before
    assert phase == "SFT focus" and steps == 2 and len(focus) == 2 * 8
    assert {s.id for s, _ in focus} <= weak and {s.id for s, _ in mixed} - weak
    values = read_json(out / "state.json")["values"]["k1/sft"]
    assert values["focus_steps"] == 2 and values["steps"] == 3


def test_focus_self_puts_the_policys_verified_answers_into_the_focus_steps(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """``sft.focus_self``: the focus steps train on D_weak and D_self, so a skill the policy mostly has is not
    trained on its few failures alone (docs/lab/dppo-value.md section 21)."""
    import training.metaloop as metaloop

    calls: list[tuple[str, list[Any]]] = []
    real_sft, real_engine = metaloop.run_sft, Metaloop._engine

    def spy(model: Any, processor: Any, items: Any, **kw: Any) -> Any:
        calls.append((kw.get("phase", "SFT"), list(items)))
        return real_sft(model, processor, items, **kw)

    def engine(self: Metaloop) -> Any:
        return _HalfRight(real_engine(self), {s.id: s.answer for s in self._data()["train"][::2]})

    monkeypatch.setattr(metaloop, "run_sft", spy)
    monkeypatch.setattr(Metaloop, "_engine", engine)
    out = tmp_path / "focus_self"
    Metaloop(_cfg(out, "sft.focus_steps=4", "sft.focus_self=true", "sft.self_weight=1", "sft.weak_max=3",
                  "pretrain.steps=0"), progress=False).run()
    report = read_json(out / "reports" / "weakness_k1.json")
    weak, verified = set(report["failures"]), report["verified"]
    (phase, focus), _ = calls
    own = [(s, t) for s, t in focus if s.id not in weak]
    assert phase == "SFT focus" and len(focus) == 4 * 8 and own and [s for s, _ in focus if s.id in weak]
    # the rows beside D_weak are the policy's own answers that passed the reward, not teacher targets
    train = {s.id: s for s in read_data(out / "data")["train"]}
    solved = set(verified) | {i for i, r in read_json(out / "sr" / "k1.json").items() if r["success_text"]}
    assert all(success_of(train[s.id], t)[1] for s, t in own) and {s.id for s, _ in own} <= solved


@pytest.mark.parametrize("lora", [(), ("model.lora.enabled=true", "model.lora.r=4", "sft.learning_rate=1e-2")],
                         ids=["full", "lora"])
def test_freeze_vision_trains_the_language_model_only_in_the_loops(tmp_path: Path, lora: tuple[str, ...]) -> None:
    """``model.freeze_vision``: RL and SFT leave the vision tower (and its merger) as the base had it; with LoRA no
    adapter goes into the tower either."""
    from safetensors.torch import load_file

    out = tmp_path / "frozen"
    Metaloop(_cfg(out, "model.freeze_vision=true", "pretrain.steps=0", *lora), progress=False).run()
    state = read_json(out / "state.json")
    assert state["values"]["k1/sft"]["steps"] > 0
    base = load_file(str(out / "base_model" / "model.safetensors"))
    final = load_file(str(out / state["model_path"] / "model.safetensors"))  # kept relative to the run
    visual = [k for k in base if ".visual." in f".{k}"]
    language = [k for k in base if k not in visual]
    assert visual and all(base[k].equal(final[k]) for k in visual)
    assert any(not base[k].equal(final[k]) for k in language)


def test_sft_replays_the_pretraining_samples_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``sft.replay_pretrain``: D_gen holds the base's pre-training samples (a perception stage's too) beside the
    general replay set, so the loop's SFT keeps what the base learned (docs/lab/dppo-value.md section 20)."""
    import training.metaloop as metaloop
    from dppo_embodied.types import load_samples

    mixed: list[Any] = []
    real = metaloop.run_sft

    def spy(model: Any, processor: Any, items: Any, **kw: Any) -> Any:
        mixed.extend(items)
        return real(model, processor, items, **kw)

    monkeypatch.setattr(metaloop, "run_sft", spy)
    out = tmp_path / "replay"
    Metaloop(_cfg(out, "pretrain.steps=1", "pretrain.n_samples=64", "pretrain.task_share=0.5",
                  "sft.replay_pretrain=true", "sft.ratios=[1,1,4]"), progress=False).run()
    pretrain_ids = {s.id for s in load_samples(out / "data" / "pretrain.jsonl")[0]}
    general_ids = {s.id for s in read_data(out / "data")["general"]}
    replayed = {s.id for s, _ in mixed if s.id in pretrain_ids}
    assert len(replayed) >= 5 and any(s.id in general_ids for s, _ in mixed)
    assert any(not i.startswith("replay/") for i in replayed)  # the stage's task samples, not only general ones


def test_rft_trains_on_the_difficulty_steps_verified_rollouts_only(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "rft"
    loop = Metaloop(_cfg(out, "mode=rft", "sft.self_weight=1"), progress=False)
    real = Metaloop._engine
    monkeypatch.setattr(Metaloop, "_engine", lambda self: _HalfRight(
        real(self), {s.id: s.answer for s in self._data()["train"][::2]}))
    summary = loop.run()
    values = read_json(out / "state.json")["values"]
    table = read_json(out / "sr" / "k1.json")
    train = {s.id: s for s in read_data(out / "data")["train"]}
    solved = {i for i, r in table.items() if r["success_text"]}
    assert solved and all(success_of(train[i], table[i]["success_text"])[1] for i in solved)
    assert values["k1/sft"]["d_self"] == len(solved) and values["k1/sft"]["steps"] > 0
    assert "k1/rl" not in values and "k1/diagnosis" not in values and summary["teacher_calls"] == 0


def test_a_budget_spent_inside_a_loop_skips_its_remaining_training_steps(tmp_path: Path) -> None:
    out = tmp_path / "spent"
    Metaloop(_cfg(out, "loops=2", "compute_budget_s=0.001"), progress=False).run()
    values = read_json(out / "state.json")["values"]
    # the difficulty step spends the budget: no RL, diagnosis, teacher or SFT past it, and no second loop; the loop's
    # evaluation still reports the model
    assert "k1/difficulty" in values and "k1/eval" in values
    assert not {"k1/rl", "k1/diagnosis", "k1/sft"} & set(values) and not [k for k in values if k.startswith("k2")]
    assert not (out / "teacher_ledger.json").exists() or read_json(out / "teacher_ledger.json")["spent"] == 0


def test_whole_loops_budget_rule_finishes_the_loop_it_began(tmp_path: Path) -> None:
    out = tmp_path / "whole"
    Metaloop(_cfg(out, "loops=2", "compute_budget_s=0.001", "budget_rule=whole_loops"), progress=False).run()
    values = read_json(out / "state.json")["values"]
    # the budget is spent in the first step, but the loop that began runs to its end; the next one does not start
    assert {"k1/difficulty", "k1/rl", "k1/diagnosis", "k1/sft", "k1/eval"} <= set(values)
    assert not [k for k in values if k.startswith("k2")]


@pytest.mark.parametrize(("left", "starts"), [(31.0, True), (29.0, False), (-1.0, False)])
def test_whole_loops_starts_a_loop_when_half_of_its_expected_cost_fits(left: float, starts: bool) -> None:
    from types import SimpleNamespace

    # loop 1 cost 60 s (its evaluation at 100 s, the base's at 40 s): loop 2 starts when >= 30 s are left
    values = {"eval_base": {"compute_s": 40.0}, "k1/eval": {"compute_s": 100.0}}
    run = SimpleNamespace(cfg=SimpleNamespace(budget_rule="whole_loops"), _budget_left=lambda: left,
                          state=SimpleNamespace(values=values))
    assert Metaloop._loop_fits(run, 2) is starts  # type: ignore[arg-type]
    assert Metaloop._loop_fits(run, 1) is (left > 0)  # type: ignore[arg-type]
    run.cfg.budget_rule = "cut"
    assert Metaloop._loop_fits(run, 2) is (left > 0)  # type: ignore[arg-type]


def test_lora_phases_merge_back(tmp_path: Path) -> None:
    import torch

    from inference.models import load_vlm

    out = tmp_path / "lora"
    loop = Metaloop(_cfg(out, "model.lora.enabled=true", "model.lora.r=4", "sft.learning_rate=1e-2"), progress=False)
    loop.run()
    model, _ = load_vlm(out / read_json(out / "state.json")["model_path"])
    base, _ = load_vlm(out / "base_model")
    assert not [n for n, _ in model.named_modules() if "lora" in n.lower()]  # adapters merged into the weights
    changed = [n for (n, p), (_, q) in zip(model.named_parameters(), base.named_parameters(), strict=True)
               if not torch.equal(p, q)]
    assert changed


def test_nan_loss_stops_with_a_clear_error_and_stays_resumable(tmp_path: Path) -> None:
    import torch

    out = tmp_path / "nan"
    loop = Metaloop(_cfg(out), progress=False)

    def poison(step: str) -> None:
        if step == "k1/diagnosis":
            with torch.no_grad():
                for p in loop.model.parameters():
                    p.fill_(float("nan"))

    loop.on_step = poison
    with pytest.raises(TrainingError, match=r"SFT phase: (loss|grad_norm) is nan.*--resume"):
        loop.run()
    state = read_json(out / "state.json")
    assert state["completed"][-1] == "k1/diagnosis" and Path(state["model_path"]).name == "k1-rl"
    summary = Metaloop(_cfg(out), resume=True, progress=False).run()  # restarts SFT from the good checkpoint
    assert read_json(out / "state.json")["completed"] == DPPO_STEPS
    assert summary["final"]["overall"] >= 0


def test_missing_and_corrupt_media_are_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from dppo_embodied.types import load_samples

    out = tmp_path / "media"
    loop = Metaloop(_cfg(out), progress=False)
    broken: list[str] = []

    def damage(step: str) -> None:
        if step == "prepare":
            train = load_samples(out / "data" / "train.jsonl")[0]
            Path(train[0].images[0]).unlink()
            Path(train[1].images[0]).write_bytes(b"not a png")
            broken.extend([train[0].id, train[1].id])

    loop.on_step = damage
    with caplog.at_level("WARNING"):
        loop.run()
    diff = read_json(out / "state.json")["values"]["k1/difficulty"]
    skipped = {d["id"]: d["reason"] for d in diff["skipped_media"]}
    assert set(skipped) == set(broken)
    assert "does not exist" in skipped[broken[0]] and "cannot read image" in skipped[broken[1]]
    assert diff["candidates"] == 22
    assert any("skipping sample" in r.message for r in caplog.records)


@pytest.mark.network
def test_teacher_down_keeps_the_rl_phase(tmp_path: Path) -> None:
    from tests.helpers.fake_openai_server import FakeOpenAIServer

    out = tmp_path / "teacher"
    with FakeOpenAIServer(mode="error500") as srv:
        cfg = _cfg(out, "teacher.kind=openai", f"teacher.base_url={srv.url}", "teacher.model=fake-model",
                   "teacher.max_retries=1", "teacher.timeout_s=5")
        with pytest.raises(TrainingError, match=r"teacher server .*failed.*--resume"):
            Metaloop(cfg, progress=False).run()
        assert srv.chat_requests  # it was asked (and retried)
    state = read_json(out / "state.json")
    assert "k1/rl" in state["completed"] and "k1/sft" not in state["completed"]
    assert (out / "ckpt" / "k1-rl" / "config.json").is_file() and (out / "rl" / "k1" / "phase.json").is_file()
    # the run resumes from there with a reachable teacher, without redoing the RL phase
    Metaloop(_cfg(out), resume=True, progress=False).run()
    journal = [json.loads(x)["step"] for x in (out / "journal.jsonl").read_text().splitlines()]
    assert journal == DPPO_STEPS


def test_kl_reference_is_the_policy_at_the_rl_phases_start(tmp_path: Path) -> None:
    """With ``grpo.beta > 0`` TRL builds the reference from ``model.config._name_or_path``. The metaloop keeps one
    model in memory across phases, so that field must name the phase's start checkpoint: otherwise loop 2's reference
    is the model before pre-training (loop 1) or before loop 1's SFT (loop 2), or, after a resume, a checkpoint
    already deleted."""
    out = tmp_path / "kl"
    Metaloop(_cfg(out, "loops=2", "grpo.beta=0.1", "sft.learning_rate=1e-2", "pretrain.steps=2"),
             progress=False).run()
    # every RL phase starts after a checkpoint (pre-training, then loop 1's SFT); on the tiny model a buffer may
    # come out empty, so the phases that trained are checked, and there must be one
    firsts = {k: next((h for h in read_json(out / "rl" / f"k{k}" / "phase.json")["log_history"] if "kl" in h), None)
              for k in (1, 2)}
    assert any(firsts.values())
    for k, first in firsts.items():
        assert first is None or first["kl"] == pytest.approx(0.0, abs=1e-6), (k, first)  # policy == reference


def test_pretraining_takes_verified_demonstrations_of_other_tasks(tmp_path: Path) -> None:
    """``pretrain.env_tasks``: a base that already uses the action envelope on other tasks (push calls naming
    objects) before the loops meet their own closed-loop task."""
    out = tmp_path / "pre"
    Metaloop(_cfg(out, "mode=grpo_only", "pretrain.steps=2", "pretrain.env_tasks=[dppo/TabletopPush-v0]",
                  "pretrain.env_share=0.5", "pretrain.env_seeds=2", "data.env_oracle=skills",
                  "data.env_prompt=compact"), progress=False).run()
    assert read_json(out / "state.json")["values"]["pretrain"]["env_demos"] == 2


def test_pretraining_demonstrations_need_tasks_and_a_share() -> None:
    with pytest.raises(ConfigError, match=r"pretrain\.env_tasks"):
        _cfg(Path("unused"), "pretrain.env_tasks=[dppo/TabletopPush-v0]")
    with pytest.raises(ConfigError, match=r"pretrain\.env_tasks"):
        _cfg(Path("unused"), "pretrain.env_share=0.3")
