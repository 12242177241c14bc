"""Foundation: the tiny offline Qwen2.5-VL builds, reloads, generates from an image and trains with SFTTrainer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from PIL import Image  # noqa: E402


def _square(colour: tuple[int, int, int], size: int = 64) -> Image.Image:
    img = Image.new("RGB", (size, size), (128, 128, 128))
    img.paste(colour, (16, 16, 48, 48))
    return img


def test_build_reload_and_generate_with_an_image(tiny_vlm_path: Path) -> None:
    from dppo_embodied.conversation import Conversation
    from inference.models import load_vlm
    from inference.policy import VLMPolicy

    meta = json.loads((tiny_vlm_path / "dppo_tiny.json").read_text())
    assert meta["size"] == "tiny" and meta["params"] < 1_000_000
    model, processor = load_vlm(tiny_vlm_path)
    assert processor.tokenizer.padding_side == "left"
    # the answer tags are single tokens, so an answer stays a few tokens long
    for tag in ("<think>", "</think>", "<answer>", "</answer>"):
        assert len(processor.tokenizer.encode(tag, add_special_tokens=False)) == 1
    policy = VLMPolicy(model, processor, max_new_tokens=8, batch_size=4)
    reqs = [Conversation("What colour is the block?", [_square((255, 0, 0))]),
            Conversation("What colour is the block?", [np.asarray(_square((0, 0, 255)))]),
            Conversation("Is there a block?")]
    out = policy.generate(reqs)
    assert isinstance(out, list) and len(out) == 3 and all(isinstance(t, str) for t in out)
    sampled = policy.generate(reqs[:2], temperature=1.0, num_return_sequences=3)
    assert len(sampled) == 2 and all(len(s) == 3 for s in sampled)


def test_sampling_ignores_the_checkpoints_decoding_defaults(tiny_vlm_path: Path) -> None:
    """An instruct checkpoint's generation config (Qwen-style ``top_k: 1``, a repetition penalty) must not turn
    sampled rollouts into greedy ones: sampling follows temperature and top_p alone, as GRPO's does."""
    from dppo_embodied.conversation import Conversation
    from inference.models import load_vlm
    from inference.policy import VLMPolicy

    model, processor = load_vlm(tiny_vlm_path)
    cfg = model.generation_config
    cfg.do_sample, cfg.top_k, cfg.top_p, cfg.temperature, cfg.repetition_penalty = True, 1, 0.001, 0.1, 1.05
    policy = VLMPolicy(model, processor, max_new_tokens=8, batch_size=4)
    req = [Conversation("What colour is the block?", [_square((255, 0, 0))])]
    greedy = policy.generate(req)
    torch.manual_seed(0)
    sampled = policy.generate(req, temperature=1.0, num_return_sequences=6)[0]
    seeded = policy.generate(req, temperature=1.0, num_return_sequences=6, seeds=[5])[0]
    assert len(set(sampled)) > 1 and len(set(seeded)) > 1  # top_k 1 would give the greedy answer six times
    assert sampled.count(greedy[0]) < 6 and policy.generate(req) == greedy  # greedy keeps the checkpoint's config
    assert policy.generate(req, temperature=1.0, num_return_sequences=6, seeds=[5])[0] == seeded
    # a seeded request's answer does not depend on what it is batched with
    others = [Conversation("Is there a block?", [_square((0, 0, 255))]),
              Conversation("Point to it.", [_square((0, 0, 0))])]
    alone = policy.generate(req, temperature=1.0, seeds=[5])[0]
    assert policy.generate([*others, req[0]], temperature=1.0, seeds=[6, None, 5])[2] == alone == seeded[0]


def test_two_sft_steps_lower_the_loss(tiny_vlm_path: Path, tmp_path: Path) -> None:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from inference.models import load_vlm

    torch.manual_seed(0)
    model, processor = load_vlm(tiny_vlm_path)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    rows = []
    for i in range(8):
        name, rgb = [("red", (255, 0, 0)), ("blue", (0, 0, 255))][i % 2]
        rows.append({
            "prompt": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What colour?"}]}],
            "completion": [{"role": "assistant", "content": [{"type": "text", "text": f"<answer>{name}</answer>"}]}],
            "images": [_square(rgb)],
        })
    args = SFTConfig(
        output_dir=str(tmp_path / "sft"), max_steps=2, per_device_train_batch_size=8, learning_rate=3e-3,
        lr_scheduler_type="constant", max_length=None, activation_checkpointing=False, bf16=False, use_cpu=True,
        report_to=[], logging_steps=1, save_strategy="no", seed=0, dataloader_num_workers=0,
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=processor)
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == 2
    assert losses[1] < losses[0]
    changed = [n for n, p in model.named_parameters() if p.requires_grad and not torch.equal(p, before[n])]
    assert changed, "no parameter changed after two SFT steps"
