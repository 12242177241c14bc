"""Shared fixtures of the envs tests: one MuJoCo scene per module (creating a GL context costs ~0.2 s)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module")
def scene() -> Iterator[object]:
    """A 96-pixel :class:`envs.scene.TabletopScene`."""
    from envs.scene import TabletopScene

    sc = TabletopScene(96)
    yield sc
    sc.close()
