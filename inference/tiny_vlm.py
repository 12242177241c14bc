"""Build a tiny Qwen2.5-VL with random weights and an offline tokenizer, saved as a normal checkpoint folder.

No hub access is needed: the tokenizer is a byte-level BPE trained on a small built-in corpus (plus any texts you
pass, e.g. your task's questions and answers), carrying Qwen's special tokens and chat template; the image
processor is transformers' PIL Qwen2-VL processor (no torchvision). The folder reloads with
:func:`inference.models.load_vlm` — the same function that loads Qwen2.5-VL-7B on a GPU machine.

    dppo train build-tiny --size tiny --out checkpoints/tiny      (training/scripts/build_tiny.py)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dppo_embodied.errors import ConfigError
from dppo_embodied.taxonomy import CAPABILITIES

logger = logging.getLogger(__name__)

#: Qwen2/2.5-VL special tokens, in Qwen's id order (ids 0..13 here).
QWEN_SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
]
#: Reasoning/answer tags as single (non-special) tokens, so they survive ``skip_special_tokens`` decoding.
TAG_TOKENS = ["<think>", "</think>", "<answer>", "</answer>"]

#: Qwen2-VL chat template: text and image/video parts, default system prompt, generation prompt.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@dataclass(frozen=True)
class TinySize:
    """Architecture of one tiny size. ``mrope_section`` must sum to (hidden / heads) / 2."""

    vocab: int
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    mrope_section: tuple[int, int, int]
    vision_depth: int
    vision_hidden: int
    vision_intermediate: int
    vision_heads: int


SIZES: dict[str, TinySize] = {
    # < 1 M parameters: unit tests.
    "tiny": TinySize(1024, 128, 256, 2, 4, 2, (4, 6, 6), 2, 64, 128, 2),
    # a few M parameters.
    "small": TinySize(1024, 192, 512, 4, 4, 2, (6, 9, 9), 2, 96, 192, 2),
    # ~1.2 M parameters: `make demo` (a 2-core CPU trains it at ~0.3 s per batch of 32 questions).
    "demo": TinySize(1024, 128, 384, 4, 4, 2, (4, 6, 6), 2, 64, 128, 2),
}


def builtin_corpus() -> list[str]:
    """Texts the default tokenizer is trained on: embodied QA vocabulary, tags, numbers and the action envelope."""
    colours = "red green blue yellow orange purple cyan magenta white black gray brown pink".split()
    shapes = "box cube block cylinder sphere ball can cup bowl plate".split()
    words = (
        "what which where how many is are the a an of on in to from left right front behind above below near far "
        "nearer farther closer table object objects color colour shape size distance cm centimeters meters first "
        "then next after before moved fell falls hit pushed picked placed stacked answer question image frame "
        "frames video camera robot gripper arm pick place push stack move grasp release open close done yes no "
        "option options letter choose best only give point points normalized coordinates step steps plan goal "
        "count number total how far tall wide between inside outside top bottom middle center same different "
        "true false because so therefore it there this that these those with without and or not none".split()
    )
    lines: list[str] = []
    for c in colours:
        for s in shapes:
            lines.append(f"the {c} {s} is on the table. what colour is the {s}? {c}")
            lines.append(f"Point to the {c} {s}. [(0.{len(c)}{len(s)}, 0.{len(s)}{len(c)})]")
    lines.append(" ".join(words))
    lines += [f"{i} {i / 10:.1f} {i * 2.5:.2f} cm" for i in range(0, 101)]
    lines += ["zero one two three four five six seven eight nine ten eleven twelve"]
    for letter in "ABCDEFGH":
        lines.append(f"({letter}) option {letter}. The answer is {letter}. Answer with the option's letter.")
    lines += [
        '<think>The red cube is left of the blue ball.</think><answer>B</answer>',
        '{"action": {"type": "point", "x": 0.43, "y": 0.61, "then": "grasp"}}',
        '{"action": {"type": "move", "dx_cm": 2.0, "dy_cm": -1.0, "dz_cm": 0.0, "gripper": "open"}}',
        '{"action": {"type": "skill", "name": "pick", "object": "red_block"}}',
        '{"action": {"type": "done"}}',
        "1. pick the red cube\n2. place it on the blue cube\n3. done",
    ]
    lines += [f"{c.name}: {c.description}" for c in CAPABILITIES]
    return lines


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> Any:
    """Train a byte-level BPE with Qwen special tokens at ids 0..13 and return a ``PreTrainedTokenizerFast``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=QWEN_SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=QWEN_SPECIAL_TOKENS[1:],
        chat_template=CHAT_TEMPLATE,
        padding_side="left",
        model_max_length=32768,
    )
    fast.add_tokens(TAG_TOKENS)
    return fast


def build_tiny_vlm(
    out: str | Path,
    size: str = "tiny",
    seed: int = 0,
    corpus: Iterable[str] = (),
    min_pixels: int = 28 * 28,
    max_pixels: int = 96 * 96,
) -> Path:
    """Build and save a random-weight Qwen2.5-VL with an offline tokenizer and processor.

    Args:
        out: output folder (created; existing files are overwritten).
        size: a key of :data:`SIZES`.
        seed: weight-initialisation seed.
        corpus: extra texts for the tokenizer (task questions/answers make answers few tokens long).
        min_pixels: image processor's minimum pixels per image.
        max_pixels: image processor's maximum pixels per image (bounds vision tokens: 96*96 gives 9 tokens).

    Returns:
        The checkpoint folder.
    """
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from inference.models import ImageOnlyQwen25VLProcessor

    if size not in SIZES:
        raise ConfigError(f"unknown tiny size {size!r}; valid: {', '.join(SIZES)}")
    if not 28 * 28 <= min_pixels <= max_pixels:
        raise ConfigError(f"need 784 <= min_pixels <= max_pixels, got {min_pixels}, {max_pixels}")
    s = SIZES[size]
    head_dim = s.hidden // s.heads
    if sum(s.mrope_section) * 2 != head_dim:
        raise ConfigError(f"size {size}: mrope_section {s.mrope_section} must sum to head_dim/2 = {head_dim // 2}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    tokenizer = train_tokenizer([*builtin_corpus(), *corpus], s.vocab)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS}
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": s.hidden,
            "intermediate_size": s.intermediate,
            "num_hidden_layers": s.layers,
            "num_attention_heads": s.heads,
            "num_key_value_heads": s.kv_heads,
            "max_position_embeddings": 4096,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": list(s.mrope_section)},
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
            "tie_word_embeddings": True,
        },
        vision_config={
            "depth": s.vision_depth,
            "hidden_size": s.vision_hidden,
            "intermediate_size": s.vision_intermediate,
            "num_heads": s.vision_heads,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 112,
            "out_hidden_size": s.hidden,
            "fullatt_block_indexes": [s.vision_depth - 1],
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.generation_config.bos_token_id = ids["<|endoftext|>"]
    model.save_pretrained(out)

    image_processor = Qwen2VLImageProcessorPil(
        min_pixels=min_pixels, max_pixels=max_pixels, patch_size=14, temporal_patch_size=2, merge_size=2
    )
    processor = ImageOnlyQwen25VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                           chat_template=CHAT_TEMPLATE)
    processor.save_pretrained(out)
    # A normal Qwen2.5-VL checkpoint: a machine with torchvision loads it with the stock processor class.
    for name in ("processor_config.json", "preprocessor_config.json"):
        p = out / name
        if p.is_file():
            data = json.loads(p.read_text())
            if data.get("processor_class"):
                data["processor_class"] = "Qwen2_5_VLProcessor"
            p.write_text(json.dumps(data, indent=2))
    n_params = sum(p.numel() for p in model.parameters())
    (out / "dppo_tiny.json").write_text(json.dumps({"size": size, "seed": seed, "params": n_params}, indent=2))
    logger.info("built tiny Qwen2.5-VL (%s, %.3fM params) in %s", size, n_params / 1e6, out)
    return out

