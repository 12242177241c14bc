"""Unknown names and config keys suggest the closest valid one ("did you mean ...")."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from dppo_embodied.config import from_dict
from dppo_embodied.errors import ConfigError, UnknownNameError


def test_unknown_name_suggests_and_shortens_long_lists() -> None:
    e = UnknownNameError("task", "tabletp_qa", [f"task_{i:02d}" for i in range(40)] + ["tabletop_qa"])
    msg = str(e)
    assert "unknown task 'tabletp_qa' (did you mean 'tabletop_qa'?)" in msg
    assert "(41 in all; dppo list shows them)" in msg and "task_39" not in msg
    assert "did you mean" not in str(UnknownNameError("robot", "zzz", ["sim", "so101"]))


def test_unknown_config_key_suggests_the_closest() -> None:
    @dataclass
    class C:
        learning_rate: float = 1.0
        loops: int = 1

    with pytest.raises(ConfigError, match=r"unknown key 'learnin_rate' \(did you mean 'learning_rate'\?\)"):
        from_dict(C, {"learnin_rate": 2.0})
