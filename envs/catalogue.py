"""Catalogues for ``dppo list``: the registered env ids and the QA suites (no MuJoCo import)."""

from __future__ import annotations

from envs import ENV_SPECS


def envs() -> list[tuple[str, str]]:
    """``(env id, help)`` of every registered env."""
    return [(k, v[1]) for k, v in sorted(ENV_SPECS.items())]


def qa_suites() -> list[tuple[str, str]]:
    """``(suite, help)`` of the QA suites of ``dppo data generate``."""
    from envs.qa import suites

    return suites()
