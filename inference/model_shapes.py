"""Architecture shapes of the public Qwen2.5-VL checkpoints, for offline work without downloading anything.

``--dry-run`` of a production recipe builds the model skeleton on the ``meta`` device from these shapes when the
hub config cannot be fetched (offline), and the GPU benchmark builds a random-weight "7B-shaped" model from them.
Values are those of the published ``config.json`` files (Qwen/Qwen2.5-VL-{3B,7B,72B}-Instruct); Pelican1.0-VL
checkpoints share them.
"""

from __future__ import annotations

from typing import Any

_VISION = {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16, "patch_size": 14,
           "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 112,
           "fullatt_block_indexes": [7, 15, 23, 31], "hidden_act": "silu"}

#: size -> (text config, vision out_hidden_size, tie_word_embeddings)
SHAPES: dict[str, dict[str, Any]] = {
    "3B": {"hidden_size": 2048, "intermediate_size": 11008, "num_hidden_layers": 36, "num_attention_heads": 16,
           "num_key_value_heads": 2, "tie_word_embeddings": True},
    "7B": {"hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28, "num_attention_heads": 28,
           "num_key_value_heads": 4, "tie_word_embeddings": False},
    "72B": {"hidden_size": 8192, "intermediate_size": 29568, "num_hidden_layers": 80, "num_attention_heads": 64,
            "num_key_value_heads": 8, "tie_word_embeddings": False},
}

#: hub ids known to have these shapes
KNOWN_IDS: dict[str, str] = {
    "Qwen/Qwen2.5-VL-3B-Instruct": "3B",
    "Qwen/Qwen2.5-VL-7B-Instruct": "7B",
    "Qwen/Qwen2.5-VL-72B-Instruct": "72B",
    "X-Humanoid/Pelican1.0-VL-3B": "3B",
    "X-Humanoid/Pelican1.0-VL-7B": "7B",
    "X-Humanoid/Pelican1.0-VL-72B": "72B",
}


def qwen25vl_config(size: str, num_hidden_layers: int | None = None, vision_depth: int | None = None,
                    **text_overrides: Any) -> Any:
    """A ``Qwen2_5_VLConfig`` with the published shape of ``size`` (3B, 7B, 72B).

    Args:
        size: model size key of :data:`SHAPES`.
        num_hidden_layers: optional override (e.g. fewer layers for a quick smoke run).
        vision_depth: optional override of the vision blocks (smoke runs).
        text_overrides: other text-config overrides (``vocab_size``, ``hidden_size``...; smoke runs).
    """
    from transformers import Qwen2_5_VLConfig

    s = dict(SHAPES[size])
    tie = s.pop("tie_word_embeddings")
    if num_hidden_layers is not None:
        s["num_hidden_layers"] = num_hidden_layers
    text = {**s, "vocab_size": 152064, "max_position_embeddings": 128000, "rms_norm_eps": 1e-6,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]},
            "hidden_act": "silu", "bos_token_id": 151643, "eos_token_id": 151645, "tie_word_embeddings": tie,
            **text_overrides}
    vision = {**_VISION, "out_hidden_size": text["hidden_size"]}
    if vision_depth is not None:
        vision["depth"] = vision_depth
        vision["fullatt_block_indexes"] = [vision_depth - 1]
    return Qwen2_5_VLConfig(text_config=text, vision_config=vision, image_token_id=151655, video_token_id=151656,
                            vision_start_token_id=151652, vision_end_token_id=151653, tie_word_embeddings=tie)


def config_for(path: str) -> tuple[Any, str]:
    """The config of ``path``: the checkpoint's own (local folder or reachable hub), else the known shape.

    Returns:
        ``(config, source)`` with source ``"checkpoint"`` or ``"built-in <size> shape"``.

    Raises:
        OSError: the config is neither local nor reachable, and ``path`` is not a known id.
    """
    from transformers import AutoConfig

    try:  # local folder or hub cache first: never waits on the network
        return AutoConfig.from_pretrained(path, local_files_only=True), "checkpoint"
    except (OSError, ValueError):
        if path in KNOWN_IDS:
            return qwen25vl_config(KNOWN_IDS[path]), f"built-in {KNOWN_IDS[path]} shape (not in the local cache)"
    return AutoConfig.from_pretrained(path), "checkpoint (downloaded)"
