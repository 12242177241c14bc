"""The GPU benchmark's code path, run on CPU with a shrunken Qwen2.5-VL config (the real run needs a GPU)."""

from __future__ import annotations

import pytest


def test_gpu_bench_code_path_on_cpu() -> None:
    pytest.importorskip("trl")
    from training.scripts.gpu_bench import run_gpu_grpo_bench

    res = run_gpu_grpo_bench(
        "3B", steps=2, prompts_per_step=1, num_generations=2, max_completion_length=4, image_size=56, layers=1,
        device="cpu", config_overrides={"vision_depth": 1, "vocab_size": 1100, "hidden_size": 64,
                                        "intermediate_size": 128, "num_attention_heads": 2, "num_key_value_heads": 1,
                                        "rope_parameters": {"rope_type": "default", "rope_theta": 1e6,
                                                            "mrope_section": [4, 6, 6]}})
    assert res["steps"] == 2 and res["tokens_per_s"] > 0 and res["s_per_step"] > 0
    assert res["peak_memory_gib"] is None and res["gpu"].startswith("cpu")


def test_gpu_bench_refuses_without_cuda() -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    from training.scripts.gpu_bench import run_gpu_grpo_bench

    with pytest.raises(RuntimeError, match="needs CUDA"):
        run_gpu_grpo_bench(steps=1)
