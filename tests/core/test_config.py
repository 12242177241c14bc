"""Typed dataclass configs from YAML: overrides, unknown keys and wrong types name the key and the file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from dppo_embodied.config import load_config, save_config
from dppo_embodied.errors import ConfigError


@dataclass
class Inner:
    lr: float = 1e-4
    steps: int = 10


@dataclass
class Outer:
    name: str = "run"
    mode: Literal["dppo", "grpo_only", "sft_only"] = "dppo"
    rl: Inner = field(default_factory=Inner)
    tasks: list[str] = field(default_factory=list)
    horizon: list[float] = field(default_factory=lambda: [32.0, 64.0])
    teacher: str | None = None

    def __post_init__(self) -> None:
        if self.rl.steps <= 0:
            raise ConfigError(f"rl.steps must be > 0, got {self.rl.steps}")


def test_yaml_and_overrides(tmp_path: Path) -> None:
    p = tmp_path / "r.yaml"
    p.write_text("name: demo\nrl:\n  lr: 3e-4\ntasks: [a, b]\n")
    cfg = load_config(Outer, p, ["rl.steps=5", "mode=sft_only", "teacher=oracle"])
    assert cfg == Outer(name="demo", mode="sft_only", rl=Inner(lr=3e-4, steps=5), tasks=["a", "b"], teacher="oracle")
    save_config(cfg, tmp_path / "back.yaml")
    assert load_config(Outer, tmp_path / "back.yaml") == cfg


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("nmae: x\n", "unknown key 'nmae'"),
        ("rl:\n  lr: fast\n", "rl.lr"),
        ("rl:\n  steps: 2.5\n", "rl.steps"),
        ("rl:\n  stepz: 2\n", "unknown key 'rl.stepz'"),
        ("mode: ppo\n", "mode"),
        ("tasks: a\n", "tasks"),
        ("- 1\n- 2\n", "top level must be a mapping"),
        ("rl: [\n", "invalid YAML"),
        ("rl:\n  steps: 0\n", "rl.steps must be > 0"),
    ],
)
def test_errors_name_key_and_file(tmp_path: Path, text: str, needle: str) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(Outer, p)
    assert needle in str(e.value)
    assert str(p) in str(e.value)


def test_bad_override_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="key=value"):
        load_config(Outer, None, ["novalue"])
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(Outer, tmp_path / "nope.yaml")
