"""The GPU benchmark's code path, run on CPU with a shrunken Qwen2.5-VL config (the real run needs a GPU)."""

from __future__ import annotations

import pytest

#: a shrunken Qwen2.5-VL config: the benchmarks' code paths in seconds on a CPU
SMOKE = {"vision_depth": 1, "vocab_size": 1100, "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 2,
         "num_key_value_heads": 1, "rope_parameters": {"rope_type": "default", "rope_theta": 1e6,
                                                       "mrope_section": [4, 6, 6]}}


def test_gpu_bench_code_path_on_cpu() -> None:
    pytest.importorskip("trl")
    from training.scripts.gpu_bench import run_gpu_grpo_bench

    res = run_gpu_grpo_bench(
        "3B", steps=2, prompts_per_step=1, num_generations=2, max_completion_length=4, image_size=56, layers=1,
        device="cpu", config_overrides=SMOKE)
    assert res["steps"] == 2 and res["tokens_per_s"] > 0 and res["s_per_step"] > 0
    assert res["peak_memory_gib"] is None and res["gpu"].startswith("cpu")


def test_gpu_difficulty_bench_code_path_on_cpu() -> None:
    from training.scripts.gpu_bench import run_gpu_difficulty_bench

    res = run_gpu_difficulty_bench(
        "3B", candidates=3, rollouts=2, max_new_tokens=4, batch_size=4, image_size=56, layers=1, device="cpu",
        config_overrides=SMOKE)
    assert res["rollouts"] == 6 and res["rollouts_per_s"] > 0 and res["tokens_per_s"] > 0
    assert 0 < res["mean_new_tokens"] <= 4 and res["prompt_tokens_per_rollout"] > 4  # image tokens + question
    assert res["generate_calls"] == 2 and res["gpu"].startswith("cpu")  # 6 sequences in batches of 4


def test_gpu_bench_refuses_without_cuda() -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    from training.scripts.gpu_bench import run_gpu_grpo_bench

    with pytest.raises(RuntimeError, match="needs CUDA"):
        run_gpu_grpo_bench(steps=1)
