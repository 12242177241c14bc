"""Progress lines of the TRL phases (loss, reward, saturation score, ETA) and the metaloop's one TensorBoard run
(heldout/<capability> against the loop step and against compute seconds)."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest

from training.phases.callbacks import PhaseProgress
from training.runs.tensorboard import log_evaluation


def test_phase_progress_lines(caplog: pytest.LogCaptureFixture) -> None:
    cb = PhaseProgress("RL", ts=lambda: 0.35, lines=3)
    control = SimpleNamespace()
    cb.on_train_begin(None, None, control)
    cb.on_log(None, None, control, logs={"loss": 0.0123, "reward": 0.41, "learning_rate": 5e-5})
    with caplog.at_level(logging.INFO, logger="training.phases.callbacks"):
        for step in range(1, 31):
            cb.on_step_end(None, SimpleNamespace(global_step=step, max_steps=30), control)
    lines = [r.getMessage() for r in caplog.records]
    assert [ln.split(" |")[0] for ln in lines] == ["RL: step 1/30 (3%)", "RL: step 10/30 (33%)",
                                                   "RL: step 20/30 (66%)", "RL: step 30/30 (100%)"]
    assert "loss 0.0123 | reward 0.410 | TS 0.35 | lr 5.0e-05" in lines[1] and "ETA" in lines[1]
    assert lines[-1].endswith("ETA 0s")


def test_heldout_scalars_go_to_one_tensorboard_run(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for k, (score, compute) in enumerate([(20.0, 0.0), (35.0, 120.4), (50.0, 250.0)]):
        figures = {"tag": "base" if k == 0 else f"k{k}", "compute_s": compute, "general": {"overall": 40.0},
                   "heldout": {"overall": score, "per_capability": {"spatial_geometric": score + 5}}}
        log_evaluation(tmp_path, k, figures)
    acc = EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("heldout/spatial_geometric")] == [(0, 25.0), (1, 40.0), (2, 55.0)]
    assert [e.step for e in acc.Scalars("heldout_vs_compute/overall")] == [0, 120, 250]
    assert [e.value for e in acc.Scalars("general/overall")] == [40.0] * 3
    assert len(list((tmp_path / "tensorboard").iterdir())) >= 1 and not (tmp_path / "runs").exists()
