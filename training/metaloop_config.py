"""Typed configuration of the DPPO metaloop (one YAML recipe = one :class:`MetaloopConfig`).

It composes the settings that live beside their steps and phases: ``data``, ``difficulty``, ``teacher``, ``eval``,
``rollout`` (the rollout engine) and ``grpo.stagnation`` in ``training/algorithm/<step>_config.py``, ``grpo`` in
:mod:`training.phases.grpo_config`, ``sft`` and ``pretrain`` in :mod:`training.phases.sft_config`. The model and
run-level settings are defined here.

Recipes live in ``training/recipes/*.yaml`` and load with :func:`load_metaloop_config`, which reuses
:func:`dppo_embodied.config.load_config`: an unknown key, a wrong type or a bad value raises
:class:`~dppo_embodied.errors.ConfigError` naming the dotted key. The GRPO and SFT stages carry their own small
settings plus a ``trainer:`` mapping of extra ``GRPOConfig`` / ``SFTConfig`` fields (``bf16``, ``use_vllm``,
``vllm_mode``, ``deepspeed``...), checked by name against TRL's dataclasses when the stage is built, so production
flags pass through verbatim without nesting two ``TrainingArguments`` here.

Defaults marked [D] are design choices of this project (not published by the DPPO paper); see docs/training.md.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from dppo_embodied.config import check, load_config
from training.algorithm.data_sources_config import DataSettings, check_templates
from training.algorithm.difficulty_config import DifficultySettings
from training.algorithm.evaluation_config import EvalSettings
from training.algorithm.rollout_config import RolloutSettings, ServerSettings
from training.algorithm.stagnation_config import StagnationSettings
from training.algorithm.teacher_config import TeacherSettings
from training.phases.grpo_config import GRPOSettings
from training.phases.sft_config import PretrainSettings, SFTSettings

__all__ = [
    "DataSettings", "DifficultySettings", "EvalSettings", "GRPOSettings", "LoraSettings", "MetaloopConfig", "Mode",
    "ModelSettings", "PretrainSettings", "RolloutSettings", "SFTSettings", "Sampling", "ServerSettings",
    "StagnationSettings", "TeacherSettings", "load_metaloop_config",
]

Mode = Literal["dppo", "grpo_only", "sft_only", "sft_then_rl", "sft_pool", "rft"]
Sampling = Literal["difficulty", "random"]


@dataclass
class LoraSettings:
    """Optional LoRA adapters (PEFT) for both phases.

    Attributes:
        enabled: wrap the model with LoRA adapters (the base weights stay frozen).
        r: adapter rank.
        alpha: LoRA alpha.
        dropout: adapter dropout.
        target_modules: ``"all-linear"`` or a list of module names.
    """

    enabled: bool = False
    r: int = 8
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str | list[str] = "all-linear"

    def __post_init__(self) -> None:
        check(self.r > 0, "model.lora.r", f"must be > 0, got {self.r}")
        check(0 <= self.dropout < 1, "model.lora.dropout", f"must be in [0, 1), got {self.dropout}")


@dataclass
class ModelSettings:
    """The policy checkpoint.

    Attributes:
        path: checkpoint folder or hub id (Qwen2.5-VL family). Empty with ``build_tiny`` set: a tiny model is built.
        build_tiny: ``"tiny"`` or ``"small"``: build an offline random-weight Qwen2.5-VL (CPU demo and tests).
        dtype: ``float32``, ``bfloat16``, ``float16`` or ``auto``.
        max_pixels: optional cap on pixels per image (bounds the vision tokens).
        attn_implementation: optional transformers attention backend (``sdpa``, ``flash_attention_2``).
        freeze_vision: the vision tower (with its merger) trains in pre-training only; the loops' RL and SFT phases
            train the language model, so what a perception stage taught the eyes stays (docs/lab/dppo-value.md,
            section 22).
        lora: LoRA options.
    """

    path: str = ""
    build_tiny: str | None = None
    dtype: str = "float32"
    max_pixels: int | None = None
    attn_implementation: str | None = None
    freeze_vision: bool = False
    lora: LoraSettings = field(default_factory=LoraSettings)

    def __post_init__(self) -> None:
        check(bool(self.path) or self.build_tiny is not None, "model.path",
              "set a checkpoint folder / hub id, or model.build_tiny: tiny|small for an offline tiny model")
        check(self.build_tiny in (None, "tiny", "small", "demo"), "model.build_tiny",
              f"must be tiny, small or demo, got {self.build_tiny!r}")
        check(self.dtype in ("float32", "bfloat16", "float16", "auto"), "model.dtype",
              f"must be float32, bfloat16, float16 or auto, got {self.dtype!r}")
        check(self.max_pixels is None or self.max_pixels >= 28 * 28, "model.max_pixels",
              f"must be >= 784 (one 28x28 patch group), got {self.max_pixels}")


@dataclass
class MetaloopConfig:
    """One DPPO run.

    Attributes:
        name: run name.
        output_dir: run folder (state, checkpoints, SR tables, buffers, reports, TensorBoard logs).
        mode: ``dppo`` (RL -> diagnose -> SFT), or an ablation: ``grpo_only`` (RL only), ``sft_only`` (SFT on teacher
            targets of random candidates, ``sft.teacher_samples`` per phase), ``sft_then_rl`` (one such SFT phase,
            then RL), ``sft_pool`` (answer SFT on the whole pool; a reference outside the teacher budget), ``rft``
            (rejection-sampling fine-tuning: SFT on the policy's own verified rollouts of the difficulty step plus
            general replay; no RL update, no teacher call; needs ``sft.self_weight`` > 0).
        sampling: ``difficulty`` (DPPO buffer) or ``random`` (ablation: same buffer size, drawn at random).
        loops: K, metaloop iterations ([TR] 3).
        final_rl: close a ``dppo`` run with one more RL half-step after the K-th SFT phase (steps
            ``k{K+1}/difficulty``, ``k{K+1}/rl``, ``k{K+1}/eval``; a design choice [D], not the paper's: RL
            sharpens the answer distribution the last SFT phase leaves broad). Other modes ignore it.
        seed: global seed.
        threads: torch CPU threads (``torch.set_num_threads``).
        horizon_schedule: per-loop maximum clip length (``horizon_unit``); shorter lists repeat the last value;
            empty = no limit ([TR] 32 s then 64 s).
        horizon_unit: ``seconds`` (``metadata["horizon_s"]`` / video length), ``frames`` or ``steps``.
        compute_budget_s: stop the run after this much training compute (CPU seconds; 0 = no budget). Used by
            ``dppo train compare`` to give every ablation the same budget.
        budget_rule: how a budgeted run ends. ``cut``: as soon as the budget is spent (a phase stops at it, the
            loop's remaining training steps are skipped, its evaluation still runs), so a run can end on a phase's
            first steps. ``whole_loops``: loops are never cut; loop k >= 2 starts only when at least half of its
            expected cost (the compute loop k-1 took) is left, and then runs to its end, so the run ends on a
            completed loop with its compute within about half a loop of the budget, over or under.
        report_to: transformers loggers (``tensorboard``; empty for none).
        accelerate_config: accelerate config file this recipe is meant to be launched with (documentation and
            ``--dry-run`` validation). A relative path in a recipe file is resolved against the recipe's folder
            (so the recipe works from any working directory); given as a ``key=value`` override on the command
            line, against the working directory.
        model: model settings.
        data: data settings.
        difficulty: difficulty estimation and buffer settings.
        grpo: RL phase settings.
        sft: SFT phase settings.
        pretrain: optional general pre-training before the base evaluation.
        teacher: SFT teacher settings.
        eval: evaluation settings.
        rollout: where every generation outside the GRPO trainer runs (``local``, ``server``, ``openai``).
    """

    name: str = "dppo"
    output_dir: str = "outputs/dppo"
    mode: Mode = "dppo"
    sampling: Sampling = "difficulty"
    loops: int = 3
    final_rl: bool = False
    seed: int = 0
    threads: int = 2
    horizon_schedule: list[float] = field(default_factory=list)
    horizon_unit: Literal["seconds", "frames", "steps"] = "seconds"
    compute_budget_s: float = 0.0
    budget_rule: Literal["cut", "whole_loops"] = "cut"
    report_to: list[str] = field(default_factory=lambda: ["tensorboard"])
    accelerate_config: str | None = None
    model: ModelSettings = field(default_factory=lambda: ModelSettings(build_tiny="tiny"))
    data: DataSettings = field(default_factory=DataSettings)
    difficulty: DifficultySettings = field(default_factory=DifficultySettings)
    grpo: GRPOSettings = field(default_factory=GRPOSettings)
    sft: SFTSettings = field(default_factory=SFTSettings)
    pretrain: PretrainSettings = field(default_factory=PretrainSettings)
    teacher: TeacherSettings = field(default_factory=TeacherSettings)
    eval: EvalSettings = field(default_factory=EvalSettings)
    rollout: RolloutSettings = field(default_factory=RolloutSettings)

    def __post_init__(self) -> None:
        check(self.loops >= 1, "loops", f"must be >= 1, got {self.loops}")
        check(self.threads >= 1, "threads", f"must be >= 1, got {self.threads}")
        check(self.mode != "rft" or self.sft.self_weight > 0, "sft.self_weight",
              "mode rft trains on the policy's own verified rollouts (D_self): set sft.self_weight > 0, e.g. 4")
        check(self.mode != "rft" or not self.data.env_tasks, "data.env_tasks",
              "mode rft trains on question rollouts only (closed-loop episodes keep no texts to train on): "
              "leave data.env_tasks empty, or use mode dppo")
        check(all(h > 0 for h in self.horizon_schedule), "horizon_schedule",
              f"values must be > 0, got {self.horizon_schedule}")
        check_templates(self.data.generator, self.pretrain.task_templates, [], key="pretrain.task_templates")
        check(self.compute_budget_s >= 0, "compute_budget_s", f"must be >= 0, got {self.compute_budget_s}")
        check(bool(self.name) and "/" not in self.name, "name",
              f"must be a non-empty name without '/', got {self.name!r}")
        for i, r in enumerate(self.report_to):
            check(r in ("tensorboard", "wandb", "mlflow", "trackio", "none"), f"report_to[{i}]",
                  f"unknown logger {r!r}; valid: tensorboard, wandb, mlflow, trackio, none")
        if self.accelerate_config:
            check(self.accelerate_config.endswith((".yaml", ".yml", ".json")), "accelerate_config",
                  f"must be an accelerate YAML/JSON file, got {self.accelerate_config!r}")

    def horizon_for(self, k: int) -> float | None:
        """Maximum horizon of loop ``k`` (1-based), or None for no limit."""
        if not self.horizon_schedule:
            return None
        return self.horizon_schedule[min(k, len(self.horizon_schedule)) - 1]

    @property
    def out(self) -> Path:
        """The output folder as a Path."""
        return Path(self.output_dir)


def load_metaloop_config(path: str | os.PathLike[str] | None, overrides: list[str] | None = None,
                         output_dir: str | None = None) -> MetaloopConfig:
    """Load a recipe, apply ``key=value`` overrides and an optional output folder.

    Raises:
        ConfigError: naming the key (and the file) of any bad value.
    """
    ov = list(overrides or [])
    if output_dir:
        ov.append(f"output_dir={output_dir}")
    cfg = load_config(MetaloopConfig, path, ov)
    from_command_line = any(o.partition("=")[0].strip() == "accelerate_config" for o in ov)
    if path is not None and cfg.accelerate_config and not from_command_line \
            and not os.path.isabs(cfg.accelerate_config):
        cfg.accelerate_config = str(Path(path).resolve().parent / cfg.accelerate_config)
    return cfg

