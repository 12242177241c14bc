"""The RL phase: TRL's GRPOTrainer on the difficulty-filtered buffer, with the stagnation stop rule.

Dataset rows (TRL's multimodal format): ``prompt`` = conversational messages with one ``{"type": "image"}``
placeholder per image, ``images`` = the PIL images (video clips as frame lists): the sample's
:class:`~dppo_embodied.conversation.Conversation` from the one renderer
(:func:`dppo_embodied.rendering.render_sample`, ``chat_messages()`` + images), and ``sample_id`` (reaches the
reward functions). Closed-loop episode rows (:mod:`training.algorithm.env_rollouts`) carry the current observation
image and their own ``sample_id`` and are scored by the episode reward; QA rewards return ``None`` for them and vice
versa.

Everything TRL offers stays available through ``grpo.trainer`` in the recipe (``use_vllm``, ``vllm_mode``,
``bf16``, ``deepspeed``...). Constant learning rate (an early stop would otherwise leave a decaying schedule
half-way), ``gradient checkpointing`` off by default (it only slows small models).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from dppo_embodied.errors import ConfigError, MediaError, TrainingError
from dppo_embodied.media import MediaLoader
from dppo_embodied.rendering import render_sample
from dppo_embodied.types import EmbodiedSample
from training.algorithm.rewards import RewardRecorder, SampleIndex, qa_rewards
from training.algorithm.sample_io import prompt_row, task_of
from training.algorithm.stagnation import SaturationTracker
from training.phases.callbacks import BudgetCallback, NaNGuard, PhaseProgress, StagnationCallback
from training.phases.common import ComputeClock, PhaseResult, common_args, make_args, quiet
from training.phases.grpo_config import GRPOSettings
from training.runs.distributed import rank_world

logger = logging.getLogger(__name__)


def grpo_rows(samples: Sequence[EmbodiedSample], loader: MediaLoader,
              skipped: list[dict[str, str]] | None = None) -> list[dict[str, Any]]:
    """GRPO rows for question samples; samples whose media fail to load are skipped with the reason logged."""
    rows = []
    for s in samples:
        try:
            conv = render_sample(s, loader)
        except MediaError as e:
            logger.warning("RL: skipping sample %s: %s", s.id, e)
            if skipped is not None:
                skipped.append({"id": s.id, "reason": str(e)})
            continue
        rows.append({**prompt_row(conv), "sample_id": s.id})
    return rows


def grpo_args(cfg: GRPOSettings, out_dir: str | Path, report_to: Sequence[str], seed: int, max_steps: int,
              progress: bool = False) -> Any:
    """The ``trl.GRPOConfig`` of one RL phase (recipe ``grpo.trainer`` overrides checked by name)."""
    from trl import GRPOConfig

    base = common_args(out_dir, report_to, seed, max_steps, progress)
    base.update(
        per_device_train_batch_size=cfg.prompts_per_step * cfg.num_generations,
        num_generations=cfg.num_generations,
        max_completion_length=cfg.max_completion_length,
        temperature=cfg.temperature,
        beta=cfg.beta,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type="constant",
        reward_weights=[cfg.lambda_format, cfg.lambda_task],
        use_vllm=False,
    )
    args = make_args(GRPOConfig, base, dict(cfg.trainer), "grpo.trainer")
    for name, valid in _CHOICES.items():  # fields TRL only checks once training starts
        value = getattr(args, name)
        if value not in valid:
            raise ConfigError(f"grpo.trainer.{name}: {value!r} is not one of {sorted(valid)}")
    return args


_CHOICES: dict[str, set[Any]] = {
    "vllm_mode": {"colocate", "server"},
    "scale_rewards": {"group", "batch", "none", True, False},
    "loss_type": {"grpo", "dapo", "dr_grpo", "bnpo", "sapo", "cispo", "luspo", "vespo"},
    "multi_objective_aggregation": {"sum_then_normalize", "normalize_then_sum"},
}


def build_grpo_trainer(
    model: Any,
    processor: Any,
    samples: Sequence[EmbodiedSample],
    cfg: GRPOSettings,
    initial_sr: dict[str, float],
    *,
    out_dir: str | Path,
    seed: int = 0,
    report_to: Sequence[str] = (),
    index: SampleIndex | None = None,
    extra_rows: Sequence[dict[str, Any]] = (),
    extra_rewards: Sequence[Any] = (),
    extra_tasks: dict[str, str] | None = None,
    loader: MediaLoader | None = None,
    peft_config: Any = None,
    max_steps: int | None = None,
    budget_s: float = float("inf"),
    progress: bool = False,
    reserve: Sequence[EmbodiedSample] = (),
    sampling: str = "difficulty",
    policy: Any = None,
    initial_rollouts: int = 4,
) -> tuple[Any, StagnationCallback, list[dict[str, str]]] | None:
    """The GRPOTrainer of one RL phase with the DPPO machinery attached (see :func:`run_grpo` for the arguments).

    Returns:
        ``(trainer, stagnation callback, skipped samples)``, or None when there is nothing to train.
    """
    from datasets import Dataset
    from trl import GRPOTrainer

    loader = loader or MediaLoader()
    skipped: list[dict[str, str]] = []
    rows = grpo_rows(samples, loader, skipped) + list(extra_rows)
    steps = cfg.max_steps if max_steps is None else max_steps
    if not rows or steps == 0:
        logger.warning("RL: nothing to train (%d rows, budget %d steps)", len(rows), steps)
        return None
    rank, world = rank_world()
    need = cfg.prompts_per_step * world
    if len(rows) < need:  # a buffer smaller than one batch would give the sampler nothing to draw
        rows = (rows * -(-need // len(rows)))[:max(need, len(rows))]
    recorder = RewardRecorder(out_dir, rank=rank)
    index = index or SampleIndex(samples)
    reward_funcs, weights = qa_rewards(index, recorder, cfg.lambda_format, cfg.lambda_task)
    for fn in extra_rewards:
        if hasattr(fn, "recorder") and fn.recorder is None:
            fn.recorder = recorder
        reward_funcs.append(fn)
        weights.append(cfg.lambda_task)
    if cfg.reward_noise > 0:  # robustness preset: flip task/episode rewards (never the format reward)
        from training.algorithm.reward_noise import NoisyReward

        reward_funcs = [reward_funcs[0], *(NoisyReward(f, cfg.reward_noise, seed + i)
                                           for i, f in enumerate(reward_funcs[1:], start=1))]
    args = grpo_args(cfg, out_dir, report_to, seed, steps, progress)
    args.reward_weights = weights
    tasks = {s.id: task_of(s) for s in samples}
    tasks.update(extra_tasks or {})
    row_ids = {r["sample_id"] for r in rows if r["sample_id"] in tasks and "@" not in r["sample_id"]}
    row_ids |= set(extra_tasks or {})
    tracker = SaturationTracker({i: initial_sr.get(i, 0.0) for i in row_ids}, {i: tasks.get(i, "") for i in row_ids},
                                cfg.stagnation, initial_rollouts=initial_rollouts)
    stagnation = StagnationCallback(tracker, recorder)
    callbacks: list[Any] = [stagnation, NaNGuard("RL"), BudgetCallback(budget_s),
                            PhaseProgress("RL", ts=lambda: stagnation.reports[-1].ts if stagnation.reports else None)]
    dataset: Any = Dataset.from_list(rows)
    if cfg.dynamic_sampling.enabled:
        from training.phases.dynamic_sampling import dynamic_dataset

        dataset, ds_callback = dynamic_dataset(rows, reserve, tracker, initial_sr, recorder, cfg,
                                               lambda xs: grpo_rows(xs, loader, skipped), index,
                                               sampling=sampling, seed=seed, policy=policy)
        callbacks.append(ds_callback)
        args.shuffle_dataset = False  # a shuffle buffer would read the live stream ahead
    trainer = GRPOTrainer(model=model, reward_funcs=reward_funcs, args=args, train_dataset=dataset,
                          processing_class=processor, callbacks=callbacks, peft_config=peft_config)
    quiet(trainer)
    return trainer, stagnation, skipped


def run_grpo(
    model: Any,
    processor: Any,
    samples: Sequence[EmbodiedSample],
    cfg: GRPOSettings,
    initial_sr: dict[str, float],
    **kwargs: Any,
) -> PhaseResult:
    """Run GRPO on the buffer ``samples`` (plus optional closed-loop rows) until TS >= threshold or the budget ends.

    Args:
        model: the policy, trained in place.
        processor: its processor (always passed to TRL as ``processing_class``).
        samples: RL buffer question samples.
        cfg: phase settings.
        initial_sr: SR of every buffer sample (and episode sample) from the difficulty estimation.
        **kwargs: ``out_dir`` (phase folder: reward records, TensorBoard), ``seed``, ``report_to``, ``index``
            (sample index for rewards), ``extra_rows`` (closed-loop decision states), ``extra_rewards`` (the
            episode reward, weight ``lambda_task``), ``extra_tasks`` (episode sample id -> task), ``loader``,
            ``peft_config`` (LoRA), ``max_steps`` (``cfg.max_steps`` when None), ``budget_s`` (compute budget of
            the phase), ``progress``; with ``cfg.dynamic_sampling.enabled``: ``reserve`` (candidates that may refill
            dropped prompts), ``sampling`` (refill order) and ``policy`` (a :class:`inference.policy.VLMPolicy` on
            the same model, for probe rollouts); ``initial_rollouts`` (T of the difficulty estimation behind
            ``initial_sr``: the stop rule's noise band).

    Returns:
        A :class:`PhaseResult` with the stop-rule reports.

    Raises:
        TrainingError: on a NaN/inf loss or non-finite sampling probabilities.
    """
    built = build_grpo_trainer(model, processor, samples, cfg, initial_sr, **kwargs)
    if built is None:
        return PhaseResult(steps=0, compute_s=0.0)
    trainer, stagnation, skipped = built
    model.train()
    try:
        with ComputeClock() as clock:
            trainer.train()
    except RuntimeError as e:  # e.g. sampling from NaN probabilities after a diverged update
        if "nan" in str(e).lower() or "inf" in str(e).lower():
            raise TrainingError(f"RL phase: the policy produced non-finite values ({e}); nothing of the phase was "
                                "saved. Lower grpo.learning_rate and rerun with --resume") from e
        raise
    finally:
        model.eval()
    if kwargs.get("peft_config") is not None:
        trainer.model = trainer.model.merge_and_unload()
    sampler = next((getattr(c, "sampler", None) for c in trainer.callback_handler.callbacks
                    if getattr(c, "sampler", None) is not None), None)
    return PhaseResult(steps=int(trainer.state.global_step), compute_s=clock.seconds,
                       log_history=list(trainer.state.log_history), stopped_early=stagnation.stopped_at is not None,
                       reports=[asdict(r) for r in stagnation.reports], skipped=skipped,
                       rows=len(sampler.rows) if sampler else len(trainer.train_dataset),
                       dynamic_sampling=sampler.stats.to_json() if sampler else None)


def zero_std_fraction(log_history: Sequence[dict[str, Any]]) -> float | None:
    """Mean of TRL's ``frac_reward_zero_std`` over a phase (share of GRPO groups with no reward variance)."""
    vals = [h["frac_reward_zero_std"] for h in log_history if "frac_reward_zero_std" in h]
    return sum(vals) / len(vals) if vals else None
