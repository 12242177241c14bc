"""Typed configuration of the DPPO metaloop (one YAML recipe = one :class:`MetaloopConfig`).

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
from typing import Any, Literal

from dppo_embodied.config import load_config
from dppo_embodied.errors import ConfigError
from dppo_embodied.taxonomy import SLUGS

Mode = Literal["dppo", "grpo_only", "sft_only", "sft_then_rl", "sft_pool"]
Sampling = Literal["difficulty", "random"]


def _check(cond: bool, key: str, msg: str) -> None:
    if not cond:
        raise ConfigError(f"{key}: {msg}")


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
        _check(self.r > 0, "model.lora.r", f"must be > 0, got {self.r}")
        _check(0 <= self.dropout < 1, "model.lora.dropout", f"must be in [0, 1), got {self.dropout}")


@dataclass
class ModelSettings:
    """The policy checkpoint.

    Attributes:
        path: checkpoint folder or hub id (Qwen2.5-VL family). Empty with ``build_tiny`` set: a tiny model is built.
        build_tiny: ``"tiny"`` or ``"small"``: build an offline random-weight Qwen2.5-VL (CPU demo and tests).
        dtype: ``float32``, ``bfloat16``, ``float16`` or ``auto``.
        max_pixels: optional cap on pixels per image (bounds the vision tokens).
        attn_implementation: optional transformers attention backend (``sdpa``, ``flash_attention_2``).
        lora: LoRA options.
    """

    path: str = ""
    build_tiny: str | None = None
    dtype: str = "float32"
    max_pixels: int | None = None
    attn_implementation: str | None = None
    lora: LoraSettings = field(default_factory=LoraSettings)

    def __post_init__(self) -> None:
        _check(bool(self.path) or self.build_tiny is not None, "model.path",
               "set a checkpoint folder / hub id, or model.build_tiny: tiny|small for an offline tiny model")
        _check(self.build_tiny in (None, "tiny", "small", "demo"), "model.build_tiny",
               f"must be tiny, small or demo, got {self.build_tiny!r}")
        _check(self.dtype in ("float32", "bfloat16", "float16", "auto"), "model.dtype",
               f"must be float32, bfloat16, float16 or auto, got {self.dtype!r}")
        _check(self.max_pixels is None or self.max_pixels >= 28 * 28, "model.max_pixels",
               f"must be >= 784 (one 28x28 patch group), got {self.max_pixels}")


@dataclass
class DataSettings:
    """Where candidates, held-out and general-replay samples come from.

    Either JSONL files (``train``/``heldout``/``general``, read with :func:`dppo_embodied.types.load_samples`) or the
    procedural generator :func:`envs.qa.generate` (``generator``), which also lets the SFT phase synthesise fresh
    D_assoc samples for weak capabilities.

    Attributes:
        generator: envs.qa suite for candidates and held-out (``tabletop-qa``), or None to use files only.
        general_suite: envs.qa suite of the general replay set (D_gen), when ``general`` is not a file.
        train: JSONL of the candidate pool (overrides the generator for candidates).
        heldout: JSONL of the held-out split.
        general: JSONL of the general replay set.
        n_train: candidates generated.
        n_heldout: held-out samples generated (a disjoint seed range).
        n_general: general replay samples generated.
        capabilities: restrict generated samples to these capability slugs (empty: all).
        templates: restrict generated samples to these question templates (``metadata["template"]``; empty: all).
        image_size: generated image side in pixels.
        seed: generator seed (held-out and synthesis use disjoint derived seeds).
        env_tasks: closed-loop gymnasium ids (``dppo/TabletopPick-v0``) trained with whole episodes as rollouts.
        env_seeds: candidate seeds per closed-loop task.
        env_heldout_seeds: held-out seeds per closed-loop task.
        env_max_steps: episode step cap.
        env_oracle: demonstrations of closed-loop failures: ``expert`` (the scripted expert's actions) or
            ``skills`` (single named-skill calls where the task allows, e.g. pick; the expert otherwise).
        env_prompt: ``full`` (the shared action-envelope system prompt, for real VLMs) or ``compact`` (the step
            prompt only, for tiny models).
        difficulty: generator difficulty knobs for every generated split (``envs.qa`` ``Difficulty``, e.g.
            ``{n_objects: [1, 3]}``; passed when the generator accepts ``difficulty``).
        eval_split: what the run evaluates on: ``heldout`` (reported numbers) or ``validation`` (a third disjoint
            seed stream, for tuning; docs/ablation.md: tune only on validation).
    """

    generator: str | None = "tabletop-qa"
    general_suite: str = "replay"
    train: str | None = None
    heldout: str | None = None
    general: str | None = None
    n_train: int = 600
    n_heldout: int = 300
    n_general: int = 300
    capabilities: list[str] = field(default_factory=list)
    templates: list[str] = field(default_factory=list)
    image_size: int = 96
    seed: int = 0
    env_tasks: list[str] = field(default_factory=list)
    env_seeds: int = 16
    env_heldout_seeds: int = 16
    env_max_steps: int = 6
    env_oracle: Literal["expert", "skills"] = "expert"
    env_prompt: Literal["full", "compact"] = "full"
    difficulty: dict[str, Any] = field(default_factory=dict)
    eval_split: Literal["heldout", "validation"] = "heldout"

    def __post_init__(self) -> None:
        _check(self.generator is not None or self.train is not None, "data.train",
               "set data.train (a JSONL file) or data.generator (e.g. tabletop-qa)")
        for key in ("n_train", "n_heldout", "n_general", "env_seeds", "env_heldout_seeds", "env_max_steps"):
            v = getattr(self, key)
            _check(isinstance(v, int) and v >= 0, f"data.{key}", f"must be a non-negative integer, got {v!r}")
        _check(self.image_size >= 28, "data.image_size", f"must be >= 28 pixels, got {self.image_size}")
        for i, c in enumerate(self.capabilities):
            _check(c in SLUGS, f"data.capabilities[{i}]", f"unknown capability {c!r}; valid: {', '.join(SLUGS)}")


@dataclass
class DifficultySettings:
    """Difficulty estimation and the RL buffer ([P] SR = mean success over T rollouts; thresholds [D]).

    Attributes:
        rollouts: T, sampled rollouts per candidate.
        temperature: sampling temperature of the estimation rollouts.
        max_new_tokens: generation cap for estimation, diagnosis and evaluation.
        trivial_sr: SR >= this is trivial and dropped from RL.
        intractable_sr: SR <= this is intractable for RL and routed to the weakness pool.
        max_task_share: cap on any one task's share of the RL buffer.
        max_capability_share: cap on any one capability's share of the RL buffer.
        buffer_size: maximum RL buffer size.
        failure_sr: diagnosis: a sample whose post-RL SR is below this is a failure (D_weak); a value just above 0
            keeps only never-solved samples (the ReLIFT-style variant).
    """

    rollouts: int = 4
    temperature: float = 1.0
    max_new_tokens: int = 24
    trivial_sr: float = 1.0
    intractable_sr: float = 0.0
    max_task_share: float = 0.35
    max_capability_share: float = 0.35
    buffer_size: int = 256
    failure_sr: float = 0.5

    def __post_init__(self) -> None:
        _check(0 < self.failure_sr <= 1, "difficulty.failure_sr", f"must be in (0, 1], got {self.failure_sr}")
        _check(self.rollouts >= 1, "difficulty.rollouts", f"must be >= 1, got {self.rollouts}")
        _check(self.temperature > 0, "difficulty.temperature",
               f"must be > 0 for sampled rollouts, got {self.temperature}")
        _check(0 <= self.intractable_sr < self.trivial_sr <= 1, "difficulty.intractable_sr",
               f"need 0 <= intractable_sr < trivial_sr <= 1, got {self.intractable_sr} and {self.trivial_sr}")
        for key in ("max_task_share", "max_capability_share"):
            v = getattr(self, key)
            _check(0 < v <= 1, f"difficulty.{key}", f"must be in (0, 1], got {v}")
        _check(self.buffer_size >= 1, "difficulty.buffer_size", f"must be >= 1, got {self.buffer_size}")


@dataclass
class StagnationSettings:
    """The RL stop rule: stop when mean_i TS_i >= threshold ([TR] 0.7; TS_i definition [D], docs/training.md).

    Attributes:
        threshold: stop when the mean per-task saturation score reaches this.
        window: RL steps per evaluation window.
        epsilon: a sample has plateaued when its SR moved less than this between windows.
        min_windows: windows to wait before the rule may fire.
    """

    threshold: float = 0.7
    window: int = 8
    epsilon: float = 0.1
    min_windows: int = 2

    def __post_init__(self) -> None:
        _check(0 < self.threshold <= 1, "grpo.stagnation.threshold", f"must be in (0, 1], got {self.threshold}")
        _check(self.window >= 1, "grpo.stagnation.window", f"must be >= 1, got {self.window}")
        _check(0 <= self.epsilon <= 1, "grpo.stagnation.epsilon", f"must be in [0, 1], got {self.epsilon}")
        _check(self.min_windows >= 1, "grpo.stagnation.min_windows", f"must be >= 1, got {self.min_windows}")


@dataclass
class DynamicSamplingSettings:
    """DAPO-style dynamic sampling in the RL phase (:mod:`training.dynamic_sampling`).

    Attributes:
        enabled: drop prompts whose GRPO group had zero reward variance and refill their slots from the candidates
            left out of the buffer (most informative first).
        probe_rollouts: cheap sampled rollouts per prompt before it enters a batch; prompts whose outcomes all agree
            are dropped before they cost a group (0 = no pre-filter).
        max_tries: prompts probed per batch slot before one is taken unprobed.
    """

    enabled: bool = False
    probe_rollouts: int = 0
    max_tries: int = 4

    def __post_init__(self) -> None:
        _check(self.probe_rollouts >= 0, "grpo.dynamic_sampling.probe_rollouts",
               f"must be >= 0, got {self.probe_rollouts}")
        _check(self.max_tries >= 1, "grpo.dynamic_sampling.max_tries", f"must be >= 1, got {self.max_tries}")


@dataclass
class GRPOSettings:
    """The RL phase (TRL GRPOTrainer).

    Attributes:
        max_steps: step budget per RL phase.
        learning_rate: constant learning rate (training-stack.md: <= 2e-4 for a tiny VLM).
        num_generations: G, completions per prompt.
        prompts_per_step: prompts per optimizer step (per device).
        max_completion_length: completion token cap.
        temperature: rollout sampling temperature.
        beta: KL coefficient (0 disables the reference model).
        lambda_format: λ_f, weight of the format reward.
        lambda_task: λ_t, weight of the task reward.
        stagnation: the stop rule.
        dynamic_sampling: DAPO-style dynamic sampling (off by default).
        reward_noise: fraction of RL task rewards flipped (robustness preset; :mod:`training.reward_noise`).
        trainer: extra ``trl.GRPOConfig`` fields (checked by name).
    """

    max_steps: int = 40
    learning_rate: float = 1e-4
    num_generations: int = 8
    prompts_per_step: int = 8
    max_completion_length: int = 16
    temperature: float = 1.0
    beta: float = 0.0
    lambda_format: float = 0.1
    lambda_task: float = 1.0
    stagnation: StagnationSettings = field(default_factory=StagnationSettings)
    dynamic_sampling: DynamicSamplingSettings = field(default_factory=DynamicSamplingSettings)
    reward_noise: float = 0.0
    trainer: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(self.max_steps >= 0, "grpo.max_steps", f"must be >= 0, got {self.max_steps}")
        _check(0 < self.learning_rate <= 1e-2, "grpo.learning_rate", f"must be in (0, 1e-2], got {self.learning_rate}")
        _check(self.num_generations >= 2, "grpo.num_generations",
               f"must be >= 2 (GRPO normalises rewards within a group), got {self.num_generations}")
        _check(self.prompts_per_step >= 1, "grpo.prompts_per_step", f"must be >= 1, got {self.prompts_per_step}")
        _check(self.max_completion_length >= 1, "grpo.max_completion_length",
               f"must be >= 1, got {self.max_completion_length}")
        _check(self.temperature > 0, "grpo.temperature", f"must be > 0, got {self.temperature}")
        _check(self.beta >= 0, "grpo.beta", f"must be >= 0, got {self.beta}")
        _check(0 <= self.reward_noise <= 1, "grpo.reward_noise", f"must be in [0, 1], got {self.reward_noise}")
        _check(self.lambda_format >= 0 and self.lambda_task > 0, "grpo.lambda_task",
               f"need lambda_format >= 0 and lambda_task > 0, got {self.lambda_format}, {self.lambda_task}")


@dataclass
class SFTSettings:
    """The SFT phase (TRL SFTTrainer) on D_weak ∪ D_assoc ∪ D_gen.

    Attributes:
        max_steps: optimizer steps per SFT phase.
        learning_rate: learning rate (training-stack.md: ~3e-4 for a tiny VLM).
        batch_size: samples per step (per device).
        warmup_steps: linear warm-up, then constant.
        size: samples in the SFT mix.
        ratios: D_weak : D_assoc : D_gen ([D] 1 : 2 : 2).
        synthesize_assoc: synthesise fresh D_assoc for weak capabilities with the generator (new seeds, oracle
            verified) in addition to retrieval from the pool.
        synthesize_n: fresh samples synthesised per SFT phase.
        lr_scheduler: ``constant`` (after warm-up) or ``cosine`` / ``linear`` decay to 0 over the phase (SFT phases
            always run their full step budget, so a decaying schedule is safe here, unlike in RL).
        assoc_max: at most this many D_assoc samples per phase, drawn at random (0 = all); each costs a teacher call.
        weak_max: at most this many question failures per phase go to the teacher, lowest SR first, tasks in turn
            (0 = all).
        teacher_samples: ``sft_only`` / ``sft_then_rl``: new randomly chosen candidates sent to the teacher per SFT
            phase (the ablation's equal-teacher-budget baseline).
        trainer: extra ``trl.SFTConfig`` fields (checked by name).
    """

    max_steps: int = 150
    learning_rate: float = 3e-4
    batch_size: int = 32
    warmup_steps: int = 10
    size: int = 1200
    ratios: list[float] = field(default_factory=lambda: [1.0, 2.0, 2.0])
    synthesize_assoc: bool = True
    synthesize_n: int = 512
    lr_scheduler: Literal["constant", "cosine", "linear"] = "constant"
    assoc_max: int = 0
    weak_max: int = 0
    teacher_samples: int = 64
    trainer: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(self.assoc_max >= 0, "sft.assoc_max", f"must be >= 0 (0 = all), got {self.assoc_max}")
        _check(self.weak_max >= 0, "sft.weak_max", f"must be >= 0 (0 = all), got {self.weak_max}")
        _check(self.teacher_samples >= 0, "sft.teacher_samples", f"must be >= 0, got {self.teacher_samples}")
        _check(self.max_steps >= 0, "sft.max_steps", f"must be >= 0, got {self.max_steps}")
        _check(0 < self.learning_rate <= 1e-2, "sft.learning_rate", f"must be in (0, 1e-2], got {self.learning_rate}")
        _check(self.batch_size >= 1, "sft.batch_size", f"must be >= 1, got {self.batch_size}")
        _check(self.size >= 1, "sft.size", f"must be >= 1, got {self.size}")
        _check(len(self.ratios) == 3 and all(r >= 0 for r in self.ratios) and sum(self.ratios) > 0, "sft.ratios",
               f"must be three non-negative weights [weak, assoc, gen] with a positive sum, got {self.ratios}")


@dataclass
class PretrainSettings:
    """Optional brief SFT on the general suite before the base evaluation (a stand-in for a pretrained VLM).

    Attributes:
        steps: SFT steps (0 disables pre-training).
        learning_rate: learning rate.
        batch_size: samples per step.
        n_samples: general-suite samples generated for pre-training.
        lr_scheduler: ``constant``, ``cosine`` or ``linear`` (after warm-up).
        task_share: share of pre-training samples drawn from the task generator (``data.generator``, a disjoint
            seed stream), so that the base is partly competent on the task family, like a pretrained VLM.
    """

    steps: int = 0
    learning_rate: float = 3e-4
    batch_size: int = 32
    n_samples: int = 2000
    lr_scheduler: Literal["constant", "cosine", "linear"] = "constant"
    task_share: float = 0.0

    def __post_init__(self) -> None:
        _check(self.steps >= 0, "pretrain.steps", f"must be >= 0, got {self.steps}")
        _check(0 <= self.task_share <= 1, "pretrain.task_share", f"must be in [0, 1], got {self.task_share}")


@dataclass
class TeacherSettings:
    """Teacher for the SFT phase: fills failures with reasoning + answer, kept only when verified.

    Attributes:
        kind: ``oracle`` (the simulated world's own reasoning and answer), ``openai`` (any OpenAI-compatible
            server, e.g. ``vllm serve``) or ``local`` (a transformers checkpoint).
        base_url: server URL for ``openai`` (``http://host:port/v1``).
        model: served model name for ``openai``; checkpoint path for ``local``.
        api_key_env: environment variable holding the API key (never the key itself).
        with_reasoning: targets carry ``<think>reasoning</think>`` before the answer.
        k_vote: teacher samples per failure; kept when a majority verify (1 = a single verified sample).
        temperature: teacher sampling temperature.
        max_tokens: teacher generation cap.
        timeout_s: per-request timeout.
        max_retries: retries per request before giving up.
        concurrency: parallel requests.
        budget: teacher calls the run may spend (every SFT target = one call, ``k_vote`` with voting; 0 =
            unlimited; :mod:`training.teacher_budget`).
        accuracy: ``oracle`` only: below 1, a simulated imperfect teacher that is right with this probability
            (:mod:`training.imperfect_teacher`; its wrong answers are caught by verification).
        capability_accuracy: per-capability accuracy of the simulated teacher (overrides ``accuracy``).
    """

    kind: Literal["oracle", "openai", "local"] = "oracle"
    base_url: str = ""
    model: str = ""
    api_key_env: str = "DPPO_API_KEY"
    with_reasoning: bool = False
    k_vote: int = 1
    temperature: float = 0.7
    max_tokens: int = 512
    timeout_s: float = 60.0
    max_retries: int = 3
    concurrency: int = 8
    budget: int = 0
    accuracy: float = 1.0
    capability_accuracy: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(self.budget >= 0, "teacher.budget", f"must be >= 0 (0 = unlimited), got {self.budget}")
        for key, acc in [("accuracy", self.accuracy), *((f"capability_accuracy.{c}", a)
                                                        for c, a in self.capability_accuracy.items())]:
            _check(0 <= acc <= 1, f"teacher.{key}", f"must be in [0, 1], got {acc}")
        if self.kind == "openai":
            _check(self.base_url.startswith(("http://", "https://")), "teacher.base_url",
                   f"an openai teacher needs an http(s) URL such as http://127.0.0.1:8000/v1, got {self.base_url!r}")
            _check(bool(self.model), "teacher.model", "an openai teacher needs the served model name")
        if self.kind == "local":
            _check(bool(self.model), "teacher.model", "a local teacher needs a checkpoint path in teacher.model")
        _check(self.k_vote >= 1, "teacher.k_vote", f"must be >= 1, got {self.k_vote}")
        _check(self.max_retries >= 0, "teacher.max_retries", f"must be >= 0, got {self.max_retries}")


@dataclass
class EvalSettings:
    """Held-out evaluation after every phase (greedy, scored by benchmarks.metrics.score_sample).

    Attributes:
        max_new_tokens: generation cap.
        batch_size: requests per generation batch.
        every_phase: evaluate after each RL and SFT phase (else only after each loop).
    """

    max_new_tokens: int = 24
    batch_size: int = 64
    every_phase: bool = True


@dataclass
class MetaloopConfig:
    """One DPPO run.

    Attributes:
        name: run name.
        output_dir: run folder (state, checkpoints, SR tables, buffers, reports, TensorBoard logs).
        mode: ``dppo`` (RL -> diagnose -> SFT), or an ablation: ``grpo_only`` (RL only), ``sft_only`` (SFT on teacher
            targets of random candidates, ``sft.teacher_samples`` per phase), ``sft_then_rl`` (one such SFT phase,
            then RL), ``sft_pool`` (answer SFT on the whole pool; a reference outside the teacher budget).
        sampling: ``difficulty`` (DPPO buffer) or ``random`` (ablation: same buffer size, drawn at random).
        loops: K, metaloop iterations ([TR] 3).
        seed: global seed.
        threads: torch CPU threads (``torch.set_num_threads``).
        horizon_schedule: per-loop maximum clip length (``horizon_unit``); shorter lists repeat the last value;
            empty = no limit ([TR] 32 s then 64 s).
        horizon_unit: ``seconds`` (``metadata["horizon_s"]`` / video length), ``frames`` or ``steps``.
        compute_budget_s: stop the run after this much training compute (CPU seconds; 0 = no budget). Used by
            ``dppo train compare`` to give every ablation the same budget.
        report_to: transformers loggers (``tensorboard``; empty for none).
        accelerate_config: accelerate config file this recipe is meant to be launched with (documentation and
            ``--dry-run`` validation).
        model: model settings.
        data: data settings.
        difficulty: difficulty estimation and buffer settings.
        grpo: RL phase settings.
        sft: SFT phase settings.
        pretrain: optional general pre-training before the base evaluation.
        teacher: SFT teacher settings.
        eval: evaluation settings.
    """

    name: str = "dppo"
    output_dir: str = "outputs/dppo"
    mode: Mode = "dppo"
    sampling: Sampling = "difficulty"
    loops: int = 3
    seed: int = 0
    threads: int = 2
    horizon_schedule: list[float] = field(default_factory=list)
    horizon_unit: Literal["seconds", "frames", "steps"] = "seconds"
    compute_budget_s: float = 0.0
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

    def __post_init__(self) -> None:
        _check(self.loops >= 1, "loops", f"must be >= 1, got {self.loops}")
        _check(self.threads >= 1, "threads", f"must be >= 1, got {self.threads}")
        _check(all(h > 0 for h in self.horizon_schedule), "horizon_schedule",
               f"values must be > 0, got {self.horizon_schedule}")
        _check(self.compute_budget_s >= 0, "compute_budget_s", f"must be >= 0, got {self.compute_budget_s}")
        _check(bool(self.name) and "/" not in self.name, "name",
               f"must be a non-empty name without '/', got {self.name!r}")
        for i, r in enumerate(self.report_to):
            _check(r in ("tensorboard", "wandb", "mlflow", "trackio", "none"), f"report_to[{i}]",
                   f"unknown logger {r!r}; valid: tensorboard, wandb, mlflow, trackio, none")
        if self.accelerate_config:
            _check(self.accelerate_config.endswith((".yaml", ".yml", ".json")), "accelerate_config",
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
    return load_config(MetaloopConfig, path, ov)


def check_trainer_overrides(cls: type, overrides: dict[str, Any], key: str) -> None:
    """Check that every key of a ``trainer:`` mapping is a field of TRL's ``cls`` (GRPOConfig or SFTConfig).

    Raises:
        ConfigError: naming ``<key>.<field>`` and a few valid fields.
    """
    import dataclasses

    valid = {f.name for f in dataclasses.fields(cls)}
    for name in overrides:
        if name not in valid:
            close = sorted(v for v in valid if v.split("_")[0] == name.split("_")[0])[:8]
            hint = f"; similar: {', '.join(close)}" if close else ""
            raise ConfigError(f"{key}.{name}: not a field of trl.{cls.__name__}{hint}")
