"""Shared fixtures of the bridge tests: a bridge over the fake robot and a fake OpenAI server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from robot_bridge.planner import PlannerConfig
from robot_bridge.safety import SafetyConfig
from robot_bridge.session import Bridge, BridgeConfig
from tests.bridge.fakes import FakeRobot

BridgeFactory = Callable[..., Bridge]


@pytest.fixture
def make_bridge() -> Iterator[BridgeFactory]:
    """``make_bridge(server_url, robot=None, planner=..., safety=..., **config)``: a started Bridge, closed after."""
    made: list[Bridge] = []

    def factory(server: str, robot: Any = None, planner: dict[str, Any] | None = None,
                safety: dict[str, Any] | None = None, **kw: Any) -> Bridge:
        cfg = BridgeConfig(robot="fake", server=server, model="fake-model", task="Touch the box.",
                           camera_fps=30.0, planner=PlannerConfig(**{"rate_hz": 5.0, "request_timeout_s": 1.0,
                                                                    **(planner or {})}),
                           safety=SafetyConfig(**(safety or {})), **kw)
        b = Bridge(cfg, robot=robot if robot is not None else FakeRobot())
        made.append(b)
        return b.__enter__()

    yield factory
    for b in made:
        b.close()
