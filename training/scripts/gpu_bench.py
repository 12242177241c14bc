"""GPU benchmarks on a 7B-shaped Qwen2.5-VL with random bf16 weights (no downloads): a GRPO step, and difficulty
estimation (the metaloop's T rollouts per candidate) with transformers generate.

    python -m training.scripts.gpu_bench --bench difficulty --size 7B --out gpu_bench_difficulty.json   # < 5 min, H100
    python -m training.scripts.gpu_bench --bench grpo --size 7B --steps 3 --out gpu_bench.json          # H200
    pytest -m "bench and gpu" --benchmark-enable --benchmark-only tests/perf/test_bench_training.py

The model has the published Qwen2.5-VL-7B shape (:mod:`inference.model_shapes`: 8.3 B parameters) and random bf16
weights; the tokenizer and image processor come from the offline tiny builder (their special-token ids are copied
into the config, the vocabulary stays 152,064). Prompts are one 448 x 448 image (256 visual tokens) and a
question.

* ``grpo``: completions sampled up to ``max_completion_length`` tokens with transformers generation (no vLLM);
  reported: tokens/s (prompt + completion tokens per second of TRL ``step_time``, TRL's own ``num_tokens``
  counter) and peak GPU memory.
* ``difficulty``: :func:`training.algorithm.difficulty.estimate_success_rates` with the ``local`` rollout engine
  (the metaloop's own code path: :class:`~training.algorithm.difficulty.QARoller` over the hf backend and
  :class:`~inference.policy.VLMPolicy`), ``rollouts`` sampled completions (temperature 1) per candidate up to
  ``max_new_tokens`` tokens, ``batch_size`` sequences per generate call, after one untimed warm-up batch; reported:
  rollouts/s, generated tokens/s (non-padding new tokens counted from generate's output), prompt tokens, peak GPU
  memory and the card's name.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def _build(size: str, layers: int | None, device: str, image_size: int,
           config_overrides: dict[str, Any] | None) -> tuple[Any, Any, Any, float, Path]:
    """``(model, processor, config, build seconds, temp folder)``: a random-weight bf16 Qwen2.5-VL of ``size``."""
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    from inference.model_shapes import qwen25vl_config
    from inference.models import load_processor
    from inference.tiny_vlm import build_tiny_vlm

    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("the GPU benchmark needs CUDA")
    tmp = Path(tempfile.mkdtemp(prefix="dppo-gpu-bench-"))
    build_tiny_vlm(tmp / "tok", size="tiny", max_pixels=image_size * image_size)
    processor = load_processor(tmp / "tok", max_pixels=image_size * image_size)
    tok = processor.tokenizer
    config = qwen25vl_config(size, num_hidden_layers=layers, **(config_overrides or {}))
    ids = {k: tok.convert_tokens_to_ids(t) for k, t in (("image_token_id", "<|image_pad|>"),
                                                          ("video_token_id", "<|video_pad|>"),
                                                          ("vision_start_token_id", "<|vision_start|>"),
                                                          ("vision_end_token_id", "<|vision_end|>"))}
    for k, v in ids.items():
        setattr(config, k, v)
    config.text_config.eos_token_id = tok.convert_tokens_to_ids("<|im_end|>")
    config.text_config.pad_token_id = tok.pad_token_id
    torch.manual_seed(0)
    t0 = time.time()
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    model.generation_config.eos_token_id = config.text_config.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    if device == "cuda":
        torch.cuda.synchronize()
    return model, processor, config, time.time() - t0, tmp


def run_gpu_grpo_bench(size: str = "7B", steps: int = 3, prompts_per_step: int = 2, num_generations: int = 8,
                       max_completion_length: int = 128, image_size: int = 448, layers: int | None = None,
                       optim: str = "adamw_torch_fused", device: str = "cuda",
                       config_overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run ``steps`` GRPO steps and return throughput and memory figures.

    Args:
        size: 3B, 7B or 72B shape.
        steps: GRPO steps (the first is warm-up and not timed when there are several).
        prompts_per_step: prompts per step.
        num_generations: G.
        max_completion_length: completion cap.
        image_size: image side in pixels.
        layers: fewer decoder layers (smoke runs).
        optim: optimizer name (transformers ``optim``).
        device: ``cuda`` (the benchmark) or ``cpu`` (a smoke run of this code path with a shrunken config).
        config_overrides: ``qwen25vl_config`` keyword overrides (smoke runs).

    Raises:
        RuntimeError: ``device="cuda"`` without CUDA.
    """
    import numpy as np
    import torch
    from datasets import Dataset
    from PIL import Image
    from trl import GRPOConfig, GRPOTrainer

    cuda = device == "cuda"
    model, processor, config, build_s, tmp = _build(size, layers, device, image_size, config_overrides)
    n_params = sum(p.numel() for p in model.parameters())
    rng = np.random.default_rng(0)
    rows = [{"prompt": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is on the "
                                                                                                  "table?"}]}],
             "images": [Image.fromarray(rng.integers(0, 255, (image_size, image_size, 3), dtype=np.uint8))],
             "sample_id": str(i)} for i in range(64)]

    def reward(completions: list[Any], **kw: Any) -> list[float]:
        return [float(len(c[0]["content"]) % 7) / 7 for c in completions]

    args = GRPOConfig(output_dir=str(tmp / "out"), max_steps=steps, per_device_train_batch_size=prompts_per_step *
                      num_generations, num_generations=num_generations, max_completion_length=max_completion_length,
                      learning_rate=1e-6, bf16=True, activation_checkpointing=True, logging_steps=1,
                      save_strategy="no", report_to=[], optim=optim if cuda else "adamw_torch", use_vllm=False,
                      beta=0.0, use_cpu=not cuda)
    trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=args, train_dataset=Dataset.from_list(rows),
                          processing_class=processor)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    logs = [h for h in trainer.state.log_history if "step_time" in h]
    timed = logs[1:] or logs  # the first step includes warm-up
    tokens = (timed[-1]["num_tokens"] - (logs[0]["num_tokens"] if len(logs) > 1 else 0))
    seconds = sum(h["step_time"] for h in timed)
    return {
        "model": f"Qwen2.5-VL-{size}-shaped, random bf16 weights", "params_b": round(n_params / 1e9, 3),
        "layers": config.text_config.num_hidden_layers, "steps": steps, "timed_steps": len(timed),
        "prompts_per_step": prompts_per_step, "num_generations": num_generations,
        "max_completion_length": max_completion_length, "image_size": image_size,
        "tokens_per_s": tokens / seconds if seconds else None, "s_per_step": seconds / len(timed),
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None, "build_s": build_s,
        "gpu": torch.cuda.get_device_name(0) if cuda else "cpu (smoke run)", "torch": torch.__version__,
    }


def run_gpu_difficulty_bench(size: str = "7B", candidates: int = 32, rollouts: int = 4, max_new_tokens: int = 256,
                             batch_size: int = 64, image_size: int = 448, layers: int | None = None,
                             device: str = "cuda", config_overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Difficulty estimation of ``candidates`` questions x ``rollouts`` on the local rollout engine; return
    throughput figures (module docstring).

    Args:
        size: 3B, 7B or 72B shape.
        candidates: questions (each with its own random image).
        rollouts: T, sampled completions per candidate (temperature 1).
        max_new_tokens: generation cap (random weights rarely stop early, so most rollouts reach it).
        batch_size: sequences per generate call.
        image_size: image side in pixels.
        layers: fewer decoder layers (smoke runs).
        device: ``cuda`` (the benchmark) or ``cpu`` (a smoke run of this code path with a shrunken config).
        config_overrides: ``qwen25vl_config`` keyword overrides (smoke runs).

    Raises:
        RuntimeError: ``device="cuda"`` without CUDA.
    """
    import numpy as np
    import torch
    from PIL import Image

    from dppo_embodied.media import MediaLoader
    from dppo_embodied.types import AnswerType, EmbodiedSample
    from inference.policy import VLMPolicy
    from training.algorithm.difficulty import QARoller, estimate_success_rates
    from training.algorithm.rollout_engine import RolloutEngine

    cuda = device == "cuda"
    model, processor, config, build_s, tmp = _build(size, layers, device, image_size, config_overrides)
    pad = processor.tokenizer.pad_token_id
    counts = {"new": 0, "prompt": 0, "calls": 0}
    generate = model.generate

    def counting_generate(*args: Any, **kw: Any) -> Any:  # count the non-padding tokens each call generated
        out = generate(*args, **kw)
        width = kw["input_ids"].shape[1]
        counts["new"] += int((out[:, width:] != pad).sum())
        counts["prompt"] += int(kw["attention_mask"].sum()) * int(kw.get("num_return_sequences", 1))
        counts["calls"] += 1
        return out

    model.generate = counting_generate
    rng = np.random.default_rng(0)
    samples = []
    for i in range(candidates + 1):
        path = tmp / f"img{i}.png"
        Image.fromarray(rng.integers(0, 255, (image_size, image_size, 3), dtype=np.uint8)).save(path)
        samples.append(EmbodiedSample(
            id=f"bench-{i}", source="gpu_bench", question="Which object is closest to the robot gripper?",
            answer="A", answer_type=AnswerType.MCQ, options=["the red cube", "the blue bowl", "the green cup"],
            images=[str(path)], capabilities=["spatial_geometric"]))
    engine = RolloutEngine.in_process(VLMPolicy(model, processor, max_new_tokens=max_new_tokens,
                                                batch_size=batch_size), batch_size=batch_size)
    roller = QARoller(engine, MediaLoader(), max_new_tokens=max_new_tokens)
    roller(samples[-1:], min(rollouts, batch_size), 1.0)  # warm-up (kernels, allocator): not timed
    counts.update(new=0, prompt=0, calls=0)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    table = estimate_success_rates(samples[:candidates], roller, rollouts, 1.0, progress=False,
                                   chunk=max(1, batch_size // rollouts) * 4)
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    n = candidates * rollouts
    return {
        "bench": "difficulty", "model": f"Qwen2.5-VL-{size}-shaped, random bf16 weights",
        "params_b": round(sum(p.numel() for p in model.parameters()) / 1e9, 3),
        "layers": config.text_config.num_hidden_layers, "engine": "local (transformers generate, hf backend)",
        "candidates": candidates, "rollouts_per_candidate": rollouts, "rollouts": n,
        "max_new_tokens": max_new_tokens, "batch_size": batch_size, "image_size": image_size,
        "generate_calls": counts["calls"], "seconds": round(seconds, 3),
        "rollouts_per_s": n / seconds, "generated_tokens": counts["new"], "tokens_per_s": counts["new"] / seconds,
        "mean_new_tokens": counts["new"] / n, "prompt_tokens_per_rollout": counts["prompt"] / n,
        "sr_mean": sum(r.sr for r in table.values()) / len(table),
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None, "build_s": build_s,
        "gpu": torch.cuda.get_device_name(0) if cuda else "cpu (smoke run)", "torch": torch.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m training.scripts.gpu_bench``."""
    p = argparse.ArgumentParser(prog="python -m training.scripts.gpu_bench", description=__doc__.splitlines()[0])
    p.add_argument("--bench", default="grpo", choices=["grpo", "difficulty"],
                   help="grpo: GRPO steps; difficulty: T rollouts per candidate with transformers generate")
    p.add_argument("--size", default="7B", choices=["3B", "7B", "72B"])
    p.add_argument("--steps", type=int, default=3, help="grpo: GRPO steps")
    p.add_argument("--layers", type=int, default=None, help="fewer decoder layers (smoke runs)")
    p.add_argument("--max-completion-length", type=int, default=128, help="grpo: completion cap")
    p.add_argument("--candidates", type=int, default=32, help="difficulty: questions")
    p.add_argument("--rollouts", type=int, default=4, help="difficulty: T rollouts per question")
    p.add_argument("--max-new-tokens", type=int, default=256, help="difficulty: generation cap")
    p.add_argument("--batch-size", type=int, default=64, help="difficulty: sequences per generate call")
    p.add_argument("--out", default=None, help="write the figures as JSON here")
    args = p.parse_args(argv)
    if args.bench == "difficulty":
        res = run_gpu_difficulty_bench(args.size, args.candidates, args.rollouts, args.max_new_tokens,
                                       args.batch_size, layers=args.layers)
    else:
        res = run_gpu_grpo_bench(args.size, args.steps, layers=args.layers,
                                 max_completion_length=args.max_completion_length)
    text = json.dumps(res, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
