"""Loading VLM checkpoints and processors — one code path for the tiny offline model and real Qwen2.5-VL.

``load_vlm("path/or/hub-id")`` returns ``(model, processor)``. The processor is the checkpoint's own
``AutoProcessor`` when that yields a full multimodal processor; without torchvision (this project's CPU stack),
Qwen2.5-VL's stock processor cannot be built because its video-processor slot needs torchvision, so we build
:class:`ImageOnlyQwen25VLProcessor` from the same files (PIL image processor + tokenizer + chat template). Real
checkpoints (Qwen2.5-VL-7B, Pelican1.0-VL) load through exactly this function on users' machines.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from dppo_embodied.errors import ConfigError, DependencyNotInstalled
from dppo_embodied.imports import require
from dppo_embodied.model_ref import check_model_ref

logger = logging.getLogger(__name__)

require("transformers", extra="train")

from transformers import (  # noqa: E402
    AutoConfig,
    AutoModelForImageTextToText,
    AutoProcessor,
    Qwen2_5_VLProcessor,
)
from transformers.processing_utils import ProcessorMixin  # noqa: E402


class ImageOnlyQwen25VLProcessor(Qwen2_5_VLProcessor):
    """Qwen2.5-VL processor with no video-processor slot (works without torchvision).

    Videos are handled as lists of frames (images), which is also what TRL's GRPO expects (trl#4144).
    """

    def __init__(self, image_processor: Any = None, tokenizer: Any = None, chat_template: str | None = None,
                 **kwargs: Any) -> None:
        self.image_token, self.video_token = "<|image_pad|>", "<|video_pad|>"
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)

    @classmethod
    def get_attributes(cls) -> list[str]:  # ProcessorMixin introspects __init__; keep the two real slots
        return ["image_processor", "tokenizer"]


def _pil_image_processor(path: str | os.PathLike[str], **overrides: Any) -> Any:
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    return Qwen2VLImageProcessorPil.from_pretrained(str(path), **overrides)


def load_processor(path: str | os.PathLike[str], min_pixels: int | None = None, max_pixels: int | None = None) -> Any:
    """Load a Qwen2.5-VL-style processor, left-padded (as TRL's GRPO needs).

    Args:
        path: checkpoint folder or hub id (hub ids need network on the user's machine).
        min_pixels: optional override of the image processor's minimum pixels per image.
        max_pixels: optional override of the maximum pixels per image (bounds vision tokens).
    """
    from transformers import AutoTokenizer

    size: dict[str, int] = {}
    if min_pixels is not None:
        size["shortest_edge"] = int(min_pixels)
    if max_pixels is not None:
        size["longest_edge"] = int(max_pixels)
    proc: Any = None
    try:
        import torchvision  # noqa: F401

        proc = AutoProcessor.from_pretrained(str(path), padding_side="left")
        if not isinstance(proc, ProcessorMixin):
            proc = None
    except Exception as e:  # torchvision missing or broken (CPU torch 2.13 has no working torchvision)
        logger.debug("AutoProcessor unavailable (%s); building the image-only processor", e)
        proc = None
    if proc is None:
        tok = AutoTokenizer.from_pretrained(str(path), padding_side="left")
        image_processor = _pil_image_processor(path)
        template = getattr(tok, "chat_template", None)
        proc = ImageOnlyQwen25VLProcessor(image_processor=image_processor, tokenizer=tok, chat_template=template)
    if size:
        current = dict(proc.image_processor.size)
        current.update(size)
        proc.image_processor.size = current
    proc.tokenizer.padding_side = "left"
    if proc.tokenizer.pad_token is None:
        proc.tokenizer.pad_token = proc.tokenizer.eos_token
    return proc


def load_vlm(
    path: str | os.PathLike[str],
    dtype: str = "float32",
    device: str | None = None,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    **model_kwargs: Any,
) -> tuple[Any, Any]:
    """Load ``(model, processor)`` from a checkpoint folder (or a hub id on a connected machine).

    Raises:
        ConfigError: if the folder does not exist or holds no config, naming the path and how to build one.
    """
    import torch

    check_model_ref(str(path), flag="model")  # a missing folder is never taken for a hub id
    if dtype not in ("float32", "bfloat16", "float16", "auto"):
        raise ConfigError(f"dtype must be float32, bfloat16, float16 or auto, got {dtype!r}")
    torch_dtype = dtype if dtype == "auto" else getattr(torch, dtype)
    try:
        config = AutoConfig.from_pretrained(str(path))
    except OSError as e:  # a hub id that is not cached (offline) or not reachable: one line, not a traceback
        raise ConfigError(f"cannot load {path}: {str(e).splitlines()[0]} (a local checkpoint folder, or a hub id "
                          "with network or in the Hugging Face cache)") from e
    try:
        model = AutoModelForImageTextToText.from_pretrained(str(path), dtype=torch_dtype, **model_kwargs)
    except ImportError as e:
        raise DependencyNotInstalled("accelerate", "train", detail=str(e)) from e
    if device:
        model = model.to(device)
    model.eval()
    processor = load_processor(path, min_pixels=min_pixels, max_pixels=max_pixels)
    n_params = sum(p.numel() for p in model.parameters())
    logger.info("loaded %s (%s, %.2fM params)", path, config.model_type, n_params / 1e6)
    return model, processor


VISION_TOWER_MODULES = r".*\bvisual\b.*"
"""A Qwen2.5-VL's vision tower modules (patch embedding, blocks, merger) as a PEFT ``exclude_modules`` regex."""


def freeze_vision_tower(model: Any) -> int:
    """Stop the gradients of a Qwen2.5-VL's vision tower (patch embedding, blocks and merger).

    Returns:
        The tower's parameter count.

    Raises:
        ConfigError: if the model has no ``visual`` tower (not a Qwen2.5-VL family model).
    """
    inner = getattr(model, "model", None)
    visual = getattr(inner, "visual", None) if inner is not None else None
    if visual is None:
        visual = getattr(model, "visual", None)
    if visual is None:
        raise ConfigError(f"{type(model).__name__} has no vision tower (model.visual); model.freeze_vision needs a "
                          "Qwen2.5-VL family model, or set it to false")
    for p in visual.parameters():
        p.requires_grad_(False)
    return sum(p.numel() for p in visual.parameters())
