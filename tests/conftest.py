"""Shared test set-up: offline environment, markers, and a session-wide tiny VLM checkpoint."""

from __future__ import annotations

import os

# Offline and headless before anything imports transformers or mujoco.
for _k, _v in {
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "WANDB_MODE": "disabled",
    "TOKENIZERS_PARALLELISM": "false",
    "MUJOCO_GL": "egl",
    "PYOPENGL_PLATFORM": "egl",
    "MESA_SHADER_CACHE_DISABLE": "true",
}.items():
    os.environ.setdefault(_k, _v)

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


def _cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``gpu`` tests without CUDA (checked lazily: only when such a test is collected)."""
    gpu_items = [it for it in items if "gpu" in it.keywords]
    if gpu_items and not _cuda_available():
        skip = pytest.mark.skip(reason="needs CUDA")
        for it in gpu_items:
            it.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_vlm_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A freshly built tiny Qwen2.5-VL checkpoint (random weights, offline tokenizer), shared by the session."""
    from inference.tiny_vlm import build_tiny_vlm

    out = tmp_path_factory.mktemp("tiny_vlm")
    return build_tiny_vlm(out, size="tiny", seed=0)
