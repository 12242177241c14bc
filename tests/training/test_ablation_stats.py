"""CI maths of the multi-seed ablation: Student t intervals per variant and paired differences."""

from __future__ import annotations

import math

import pytest

from training.scripts.ablation_stats import (
    ci_excludes_zero,
    mean_ci95,
    paired_difference,
    summarize_variant,
    t_quantile_975,
)


def test_t_quantiles_match_the_table_and_fall_back_to_normal() -> None:
    assert t_quantile_975(1) == pytest.approx(12.706)
    assert t_quantile_975(2) == pytest.approx(4.303)
    assert t_quantile_975(30) == pytest.approx(2.042)
    assert t_quantile_975(200) == pytest.approx(1.96)
    with pytest.raises(ValueError):
        t_quantile_975(0)


def test_mean_ci95_by_hand() -> None:
    # values 0.5, 0.6, 0.7: mean 0.6, sd 0.1, half-width t(2) * 0.1 / sqrt(3)
    m, ci = mean_ci95([0.5, 0.6, 0.7])
    half = 4.303 * 0.1 / math.sqrt(3)
    assert m == pytest.approx(0.6) and ci == pytest.approx([0.6 - half, 0.6 + half])
    assert mean_ci95([0.4]) == (0.4, None)  # one seed: no interval
    assert mean_ci95([0.3, 0.3])[1] == pytest.approx([0.3, 0.3])  # no spread, zero width
    with pytest.raises(ValueError):
        mean_ci95([])


def test_paired_difference_removes_what_seeds_share() -> None:
    # seeds differ a lot in level but DPPO is always 0.05 to 0.07 above: the paired CI is narrow and above 0
    dppo = {0: 0.30, 1: 0.60, 2: 0.80}
    base = {0: 0.25, 1: 0.54, 2: 0.73}
    p = paired_difference(dppo, base)
    assert p["mean"] == pytest.approx(0.06) and p["n"] == 3
    assert p["per_seed"] == pytest.approx({0: 0.05, 1: 0.06, 2: 0.07})
    assert ci_excludes_zero(p["ci95"])
    unpaired_lo = mean_ci95(list(dppo.values()))[1][0] - mean_ci95(list(base.values()))[1][1]
    assert unpaired_lo < 0 < p["ci95"][0]  # the unpaired intervals overlap; pairing separates them
    assert not ci_excludes_zero(paired_difference({0: 0.5, 1: 0.4}, {0: 0.45, 1: 0.45})["ci95"])
    assert paired_difference({0: 0.5, 5: 0.1}, {0: 0.4})["n"] == 1
    with pytest.raises(ValueError, match="share no seed"):
        paired_difference({0: 0.5}, {1: 0.5})


def test_summarize_variant_means_budgets_over_seeds() -> None:
    v = summarize_variant({0: {"final": 0.5, "compute_s": 100, "teacher_calls": 10, "general": 0.8},
                           1: {"final": 0.7, "compute_s": 300, "teacher_calls": 30, "general": None}})
    assert v["final_mean"] == pytest.approx(0.6) and v["per_seed"] == {0: 0.5, 1: 0.7}
    assert v["compute_s"] == pytest.approx(200) and v["teacher_calls"] == pytest.approx(20)
    assert v["general_mean"] == pytest.approx(0.8)
    lo, hi = v["final_ci95"]
    assert lo < 0.6 < hi
