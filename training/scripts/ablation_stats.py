"""Statistics of a multi-seed ablation: mean and 95 % confidence interval per variant, paired differences.

Pure Python (no numpy/scipy), so the maths is testable in isolation and identical everywhere.

* Per variant: the held-out success of each seed, ``mean ± t_{0.975, n-1} · sd / sqrt(n)`` (Student t over seeds;
  n = number of seeds). With one seed the interval is undefined and reported as ``None``.
* Paired: for the same seed (same data, same base, same evaluation set), ``d_s = dppo_s − baseline_s``; the CI of the
  mean difference is the Student t interval of the ``d_s``. Pairing removes the variance that seeds share (data draw,
  held-out set, base), which is what makes 3 seeds enough to see a consistent difference.

The held-out set is fixed per seed, so each seed's number also carries evaluation noise (a binomial standard error
of ``sqrt(p(1-p)/n)``); it is part of the seed-to-seed spread the t interval measures.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

#: two-sided 95 % Student t quantiles t_{0.975, df} for df = 1..30
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t_quantile_975(df: int) -> float:
    """t_{0.975, df} (df >= 1); the normal quantile 1.96 beyond the table's 30 degrees of freedom."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    return _T975[df - 1] if df <= len(_T975) else 1.96


def mean_ci95(values: Sequence[float]) -> tuple[float, list[float] | None]:
    """``(mean, [lo, hi])`` of ``values`` with a Student t 95 % interval; ``(mean, None)`` for one value.

    Raises:
        ValueError: on an empty sequence.
    """
    n = len(values)
    if n == 0:
        raise ValueError("no values")
    m = sum(values) / n
    if n == 1:
        return m, None
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1))
    half = t_quantile_975(n - 1) * sd / math.sqrt(n)
    return m, [m - half, m + half]


def paired_difference(a: Mapping[Any, float], b: Mapping[Any, float]) -> dict[str, Any]:
    """Mean and 95 % CI of ``a[s] − b[s]`` over the seeds ``s`` both hold.

    Returns:
        ``{"mean", "ci95" ([lo, hi] or None), "per_seed" {seed: difference}, "n"}``.

    Raises:
        ValueError: when the two share no seed.
    """
    seeds = [s for s in a if s in b]
    if not seeds:
        raise ValueError("the two variants share no seed")
    diffs = {s: a[s] - b[s] for s in seeds}
    mean, ci = mean_ci95(list(diffs.values()))
    return {"mean": mean, "ci95": ci, "per_seed": diffs, "n": len(seeds)}


def summarize_variant(per_seed: Mapping[Any, Mapping[str, Any]]) -> dict[str, Any]:
    """Aggregate one variant's per-seed results (each with ``final``, ``compute_s``, ``teacher_calls``).

    Returns:
        ``final_mean``, ``final_ci95``, ``per_seed`` ({seed: final}), ``compute_s`` and ``teacher_calls`` (means over
        seeds), plus ``general_mean`` when the seeds report ``general``.
    """
    finals = {s: float(r["final"]) for s, r in per_seed.items()}
    mean, ci = mean_ci95(list(finals.values()))
    out: dict[str, Any] = {
        "final_mean": mean, "final_ci95": ci, "per_seed": finals,
        "compute_s": sum(float(r.get("compute_s", 0.0)) for r in per_seed.values()) / len(per_seed),
        "teacher_calls": sum(float(r.get("teacher_calls", 0)) for r in per_seed.values()) / len(per_seed),
    }
    general = [float(r["general"]) for r in per_seed.values() if r.get("general") is not None]
    if general:
        out["general_mean"] = sum(general) / len(general)
    return out


def ci_excludes_zero(ci: Sequence[float] | None) -> bool:
    """True when a 95 % interval lies strictly above 0 (a significant positive difference)."""
    return ci is not None and ci[0] > 0
