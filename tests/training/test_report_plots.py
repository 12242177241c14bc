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
