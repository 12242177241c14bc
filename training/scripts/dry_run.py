"""``dppo train --config RECIPE --dry-run``: validate a whole recipe and build everything up to loading the weights.

Checked, in order: the recipe itself (typed keys and values, QA template names and image size included); the output
folder (a folder, or creatable: not a file, not under a file, writable); the accelerate config file (a relative
path in a recipe is relative to the recipe's folder); the TRL ``GRPOConfig``
and ``SFTConfig`` the phases will use (every ``trainer:`` key by name and value); the LoRA config; the teacher
client settings (no request is sent); the data sources (files readable, generator importable, env ids
registered); the rollout engine (``rollout:``: the server kind's launcher resolvable -- ``vllm`` on PATH or
importable, ``dppo serve``'s FastAPI --, its GPUs within each node's and apart from training's unless the model is
released for them, the fleet's URLs); the model config (the checkpoint's own, or the published shape when offline)
and the model skeleton on the ``meta`` device (parameter count, memory estimate); and how long the run will take
(tiny models on a CPU, :mod:`training.scripts.estimate`). Nothing is downloaded and no weight is loaded.
Problems raise :class:`~dppo_embodied.errors.ConfigError` naming the key; soft issues (e.g. ``vllm`` not
installed on this machine) are reported as warnings.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from dppo_embodied.errors import ConfigError
from dppo_embodied.imports import is_available
from training.metaloop_config import MetaloopConfig

logger = logging.getLogger(__name__)

_DISTRIBUTED = {"NO", "MULTI_CPU", "MULTI_GPU", "FSDP", "DEEPSPEED", "MULTI_XPU", "MULTI_NPU"}


def _accelerate(path: str | None, warnings: list[str]) -> dict[str, Any] | None:
    if not path:
        return None
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"accelerate_config: {path} does not exist (a relative path in a recipe is relative to the "
                          "recipe's folder; on the command line, to the working directory)")
    try:
        acc = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"accelerate_config: {path} is not valid YAML ({e})") from e
    dist = acc.get("distributed_type")
    if dist not in _DISTRIBUTED:
        raise ConfigError(f"accelerate_config: {path}: distributed_type {dist!r} is not one of {sorted(_DISTRIBUTED)}")
    if dist == "DEEPSPEED" and not is_available("deepspeed"):
        warnings.append("deepspeed is not installed here; install it on the training machine (pip install deepspeed)")
    if dist == "FSDP" and acc.get("fsdp_config", {}).get("fsdp_version") != 2:
        warnings.append(f"{path}: fsdp_version is not 2 (FSDP2 is the tested path)")
    machines = int(acc.get("num_machines", 1) or 1)
    procs = int(acc.get("num_processes", 1))
    if procs % machines:
        raise ConfigError(f"accelerate_config: {path}: num_processes {procs} is not a multiple of num_machines "
                          f"{machines} (one process per GPU on every node)")
    return {"file": str(p), "distributed_type": dist, "num_processes": procs, "num_machines": machines,
            "processes_per_node": procs // machines, "mixed_precision": acc.get("mixed_precision")}


def check_output_dir(output_dir: str | os.PathLike[str]) -> Path:
    """Check that the run folder is a folder or can be created as one (before any work is done).

    Returns:
        The folder as an absolute path.

    Raises:
        ConfigError: it is a file, lies under a file, or its first existing parent is not writable; the message
            names the path.
    """
    p = Path(output_dir).expanduser().absolute()
    if p.exists() and not p.is_dir():
        raise ConfigError(f"output_dir: {p} exists and is not a folder; pass --output-dir (or output_dir=) a new or "
                          "existing folder")
    parent = p
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"output_dir: {p} cannot be created because {parent} is a file; choose another folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"output_dir: {p} cannot be written: {parent} is not writable by this user")
    return p


def _model(cfg: MetaloopConfig, processes: int, warnings: list[str]) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForImageTextToText

    from inference.model_shapes import config_for

    if cfg.model.build_tiny and not cfg.model.path:
        from inference.tiny_vlm import SIZES

        return {"path": f"(tiny '{cfg.model.build_tiny}' built at run time)",
                "size": str(SIZES.get(cfg.model.build_tiny))}
    try:
        config, source = config_for(cfg.model.path)
    except (OSError, ValueError) as e:
        raise ConfigError(f"model.path: cannot read a config for {cfg.model.path!r} ({e}); use a checkpoint "
                          "folder or a known hub id") from e
    with torch.device("meta"):
        model = AutoModelForImageTextToText.from_config(config)
    n = sum(p.numel() for p in model.parameters())
    vision = sum(p.numel() for name, p in model.named_parameters() if "visual" in name)
    bytes_per = 2 if cfg.model.dtype in ("bfloat16", "float16") else 4
    weights_gb = n * bytes_per / 1e9
    lora = cfg.model.lora.enabled
    # full fine-tuning with AdamW: weights + grads (dtype) + fp32 master/m/v; sharded over processes (FSDP/ZeRO-3)
    train_gb = weights_gb if lora else n * (bytes_per * 2 + 12) / 1e9
    use_vllm = bool(cfg.grpo.trainer.get("use_vllm"))
    if use_vllm and not is_available("vllm"):
        warnings.append("vllm is not installed here (it needs its own CUDA torch build); install it on the GPU "
                        "machine or set grpo.trainer.use_vllm: false")
    if cfg.model.attn_implementation == "flash_attention_2" and not is_available("flash_attn"):
        warnings.append("flash_attn is not installed here; model.attn_implementation flash_attention_2 needs it")
    return {"path": cfg.model.path, "config": source, "model_type": config.model_type,
            "params_b": round(n / 1e9, 3), "vision_params_b": round(vision / 1e9, 3),
            "weights_gb": round(weights_gb, 1), "train_state_gb_per_process": round(train_gb / max(1, processes), 1),
            "lora": lora,
            "rollouts": cfg.grpo.trainer.get("vllm_mode", "transformers") if use_vllm else "transformers"}


def dry_run(cfg: MetaloopConfig) -> dict[str, Any]:
    """Validate ``cfg`` end to end without loading weights; return a report (raises ConfigError on problems)."""
    from trl import SFTConfig

    from training.phases.common import common_args, make_args
    from training.phases.grpo import grpo_args

    warnings: list[str] = []
    report: dict[str, Any] = {"name": cfg.name, "mode": cfg.mode, "sampling": cfg.sampling, "loops": cfg.loops,
                              "output_dir": str(check_output_dir(cfg.output_dir))}
    acc = _accelerate(cfg.accelerate_config, warnings)
    report["accelerate"] = acc
    processes = acc["num_processes"] if acc else 1

    out = Path("/nonexistent-dry-run")
    g = grpo_args(cfg.grpo, out / "rl", cfg.report_to, cfg.seed, cfg.grpo.max_steps)
    report["grpo"] = {"per_device_completions": g.per_device_train_batch_size, "num_generations": g.num_generations,
                      "prompts_per_optimizer_step": cfg.grpo.prompts_per_step * processes
                      * g.gradient_accumulation_steps, "lr": g.learning_rate, "bf16": g.bf16,
                      "use_vllm": g.use_vllm, "vllm_mode": g.vllm_mode if g.use_vllm else None,
                      "max_completion_length": g.max_completion_length}
    base = common_args(out / "sft", cfg.report_to, cfg.seed, cfg.sft.max_steps)
    base.update(per_device_train_batch_size=cfg.sft.batch_size, learning_rate=cfg.sft.learning_rate, max_length=None)
    s = make_args(SFTConfig, base, dict(cfg.sft.trainer), "sft.trainer")
    report["sft"] = {"per_device_batch": s.per_device_train_batch_size, "gradient_accumulation_steps":
                     s.gradient_accumulation_steps, "lr": s.learning_rate, "bf16": s.bf16, "mix_size": cfg.sft.size,
                     "ratios": cfg.sft.ratios, "focus_steps": cfg.sft.focus_steps}

    if cfg.model.lora.enabled:
        from peft import LoraConfig

        lc = cfg.model.lora
        try:
            LoraConfig(task_type="CAUSAL_LM", r=lc.r, lora_alpha=lc.alpha, lora_dropout=lc.dropout,
                       target_modules=lc.target_modules)
        except (ValueError, TypeError) as e:
            raise ConfigError(f"model.lora: {e}") from e

    if cfg.teacher.kind == "openai":
        from dppo_embodied.client import ClientConfig

        ClientConfig(base_url=cfg.teacher.base_url, model=cfg.teacher.model, timeout_s=cfg.teacher.timeout_s,
                     max_retries=cfg.teacher.max_retries, concurrency=cfg.teacher.concurrency)
    report["teacher"] = {"kind": cfg.teacher.kind, "server": cfg.teacher.base_url or None,
                         "model": cfg.teacher.model or None, "k_vote": cfg.teacher.k_vote}

    report["rollout"] = rollout_plan(cfg, acc, warnings)
    report["data"] = _data(cfg, warnings)
    report["model"] = _model(cfg, processes, warnings)
    from training.scripts.estimate import estimate

    report["estimated_time"] = estimate(cfg)
    report["warnings"] = warnings
    report["ok"] = True
    return report


def _data(cfg: MetaloopConfig, warnings: list[str]) -> dict[str, Any]:
    from dppo_embodied.types import load_samples
    from training.algorithm.data_sources import DATA_FILES

    d = cfg.data
    info: dict[str, Any] = {}
    for name in DATA_FILES:
        src = getattr(d, name)
        if src:
            if not Path(src).is_file():
                raise ConfigError(f"data.{name}: {src} does not exist")
            samples, errors = load_samples(src, on_error="collect")
            info[name] = {"file": src, "samples": len(samples), "bad_rows": len(errors)}
    if d.generator:
        from training.algorithm.data_sources import resolve_generator

        try:
            resolve_generator(d.generator)
        except ImportError as e:
            if ":" in d.generator:
                raise ConfigError(f"data.generator: cannot import {d.generator!r} ({e})") from e
            warnings.append(f"data.generator {d.generator!r}: envs.qa is not importable here ({e})")
        info["generator"] = {"suite": d.generator, "n_train": d.n_train, "n_heldout": d.n_heldout,
                             "n_general": d.n_general}
    lists = {"data.env_tasks": d.env_tasks, "pretrain.env_tasks": cfg.pretrain.env_tasks}
    if any(lists.values()):
        try:
            import envs

            known = set(envs.ENV_SPECS)
        except ImportError as e:
            warnings.append(f"envs not importable ({e}); env ids not checked")
            known = {env_id for ids in lists.values() for env_id in ids}
        for key, ids in lists.items():
            for i, env_id in enumerate(ids):
                if env_id not in known:
                    raise ConfigError(f"{key}[{i}]: unknown env id {env_id!r}; valid: {', '.join(sorted(known))}")
    if d.env_tasks:
        info["env_tasks"] = list(d.env_tasks)
    if cfg.pretrain.env_tasks:
        info["pretrain_env_tasks"] = list(cfg.pretrain.env_tasks)
    return info


def rollout_plan(cfg: MetaloopConfig, acc: dict[str, Any] | None, warnings: list[str]) -> dict[str, Any]:
    """Check the rollout engine's settings against the launch and describe where generation will run.

    Raises:
        ConfigError: GPU counts that do not add up (naming the ``rollout.server`` key).
    """
    from dppo_embodied.config import check

    r = cfg.rollout
    info: dict[str, Any] = {"engine": r.engine}
    if r.engine == "local":
        info["where"] = "in each training process (transformers generate)"
        return info
    if r.engine == "openai":
        warnings.append(f"rollout.engine openai: the fleet {r.base_urls} must serve the current checkpoint as "
                        f"{r.model!r}; the metaloop does not sync weights")
        info.update(base_urls=list(r.base_urls), model=r.model, concurrency=r.concurrency)
        return info
    s = r.server
    nodes = acc["num_machines"] if acc else 1
    per_node = acc["processes_per_node"] if acc else 1
    kind = s.kind
    if kind in ("auto", "vllm"):
        from inference.serving.vllm_launcher import VLLMNotInstalled, find_vllm

        try:
            info["launcher"] = " ".join(find_vllm())
            kind = "vllm"
        except VLLMNotInstalled as e:
            if s.kind == "vllm":
                warnings.append(f"rollout.server.kind vllm: {e}")
            kind = "vllm" if s.kind == "vllm" else "dppo"
    if kind == "dppo" and not (is_available("fastapi") and is_available("uvicorn")):
        warnings.append("rollout.server.kind dppo needs the serve extra here (pip install -e '.[serve]')")
    gpus = s.gpu_ids if s.gpus_per_replica else []
    if gpus and acc is not None:  # the replicas' GPUs must exist on every node
        if s.release_model:
            check(max(gpus) < per_node, "rollout.server.gpus",
                  f"replicas use GPUs {gpus} but each node runs {per_node} training processes (one GPU each); with "
                  "release_model the replicas take the training GPUs between phases: use GPU indices below "
                  f"{per_node}, or fewer replicas x gpus_per_replica")
        else:
            overlap = sorted(set(gpus) & set(range(per_node)))
            check(not overlap, "rollout.server.gpus",
                  f"GPUs {overlap} train (local ranks 0..{per_node - 1}) while release_model is false: give the "
                  f"replicas other GPUs (e.g. gpus: {list(range(per_node, per_node + len(gpus)))}) or set "
                  "release_model: true")
    info.update(kind=kind, nodes=nodes, replicas_per_node=s.replicas, gpus_per_replica=s.gpus_per_replica,
                replicas=nodes * s.replicas, server_gpus_per_node=gpus,
                layout=("time-shared: training releases its model, the replicas take its GPUs between phases"
                        if s.release_model else "separate GPUs: training keeps its model, the replicas use "
                        f"GPUs {gpus} of every node ({per_node + len(gpus)} GPUs per node in all)"),
                port_base=s.port_base, startup_timeout_s=s.startup_timeout_s)
    return info
