"""GRPO's loss is computed on the distribution the completions were sampled from.

TRL's loss forward must see each completion's own image and the same 3D (M-RoPE) positions as ``generate``: with
transformers 5 a Qwen2.5-VL forward without ``mm_token_type_ids`` silently falls back to 1D positions, and a
misaligned image list would train the policy to answer without looking. Both would leave rewards plausible and
the policy gradient wrong. Checked against ``generate`` itself (the completion forced token by token), on the real
TRL trainer our RL phase builds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")


def _forced_logps(model: Any, processor: Any, row: dict[str, Any], completion: list[int], images: list[Any],
                  temperature: float) -> list[float]:
    """Log-probs of ``completion`` under ``generate`` (prefill + cached decoding), given the prompt and ``images``."""
    text = processor.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=False)
    enc = processor(text=[text], images=[images], return_tensors="pt")
    start = enc["input_ids"].shape[1]

    def allow(_: int, sofar: Any) -> list[int]:
        k = sofar.shape[0] - start
        return [completion[k]] if k < len(completion) else [0]

    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=len(completion), do_sample=False, prefix_allowed_tokens_fn=allow,
                             output_logits=True, return_dict_in_generate=True)
    steps = zip(out.logits, completion, strict=True)
    return [torch.log_softmax(step[0].float() / temperature, -1)[t].item() for step, t in steps]


def test_grpo_loss_logps_equal_generate_with_each_rows_own_image(tiny_vlm_path: Path, samples: list,
                                                                tmp_path: Path) -> None:
    from inference.models import load_vlm
    from training.phases.grpo import build_grpo_trainer
    from training.phases.grpo_config import GRPOSettings

    torch.manual_seed(0)
    model, processor = load_vlm(tiny_vlm_path)
    cfg = GRPOSettings(max_steps=1, num_generations=2, prompts_per_step=4, max_completion_length=4, temperature=0.7)
    built = build_grpo_trainer(model, processor, samples[:4], cfg, {s.id: 0.5 for s in samples[:4]},
                               out_dir=tmp_path / "rl")
    assert built is not None
    trainer = built[0]
    batch = next(iter(trainer.get_train_dataloader()))
    with torch.no_grad():
        inputs = trainer._generate_and_score_completions(batch)
        ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], 1)
        mask = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], 1)
        logps, _, _ = trainer._get_per_token_logps_and_entropies(
            model, ids, mask, inputs["completion_ids"].size(1), pixel_values=inputs.get("pixel_values"),
            image_grid_thw=inputs.get("image_grid_thw"), num_images=inputs.get("num_images"),
            mm_token_type_ids=inputs.get("mm_token_type_ids"), token_type_ids=inputs.get("token_type_ids"))
    assert "mm_token_type_ids" in inputs, "the loss forward would fall back to 1D positions"
    other_image_gap = 0.0
    for i, row in enumerate(batch):
        keep = inputs["completion_mask"][i].bool()
        completion = inputs["completion_ids"][i][keep].tolist()
        loss_side = logps[i][keep].tolist()
        own = _forced_logps(model, processor, row, completion, row["images"], cfg.temperature)
        assert own == pytest.approx(loss_side, abs=2e-3), f"row {i}: loss log-probs differ from generate's"
        other = batch[(i + cfg.num_generations) % len(batch)]  # a different prompt's image
        if other["sample_id"] != row["sample_id"]:
            theirs = _forced_logps(model, processor, row, completion, other["images"], cfg.temperature)
            other_image_gap = max(other_image_gap, max(abs(a - b) for a, b in zip(theirs, loss_side, strict=True)))
    assert other_image_gap > 1e-3, "the check cannot tell images apart: it would not catch a misaligned batch"
