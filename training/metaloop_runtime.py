"""What every step of a metaloop run shares: the model, the rollout engine, the run's data and its evaluations.

:class:`MetaloopRuntime` is the base of :class:`training.metaloop.Metaloop`, whose steps are the algorithm (read that
module top to bottom); this one holds the machinery they call: loading the policy and handing it to the rollout
engine (in process or on served replicas), rollout journals, LoRA settings, the closed-loop episode roller, the
run's data (question samples plus closed-loop seeds) and the held-out / general-replay evaluation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from dppo_embodied.media import MediaLoader
from dppo_embodied.prompts import write_prompt_style
from dppo_embodied.types import EmbodiedSample
from training.algorithm import data_sources
from training.algorithm.difficulty import QARoller
from training.algorithm.evaluation import SAMPLED_EVAL_SEED_OFFSET, evaluate, heldout_episodes, sampled_eval
from training.algorithm.rollout_engine import RolloutEngine
from training.algorithm.sample_io import loadable
from training.metaloop_config import MetaloopConfig
from training.runs.committed_run import CommittedRun
from training.runs.distributed import is_main
from training.runs.tensorboard import log_evaluation

logger = logging.getLogger(__name__)


class MetaloopRuntime(CommittedRun):
    """The shared machinery of a metaloop run (module docstring).

    Args:
        cfg: the run configuration.
        resume: continue from ``<output_dir>/state.json`` (else the folder must not hold a run).
        progress: show progress bars.
        on_step: optional hook called after each committed step with its name (tests use it).
    """

    def __init__(self, cfg: MetaloopConfig, resume: bool = False, progress: bool = True,
                 on_step: Callable[[str], None] | None = None) -> None:
        super().__init__(cfg.out, cfg.name, resume=resume, budget_s=cfg.compute_budget_s, on_step=on_step)
        self.cfg, self.progress = cfg, progress
        self.loader = MediaLoader(cfg.data.frames)
        # the closed-loop step prompt style is the checkpoint's: recorded beside every checkpoint's weights
        self.style = cfg.data.env_prompt
        self.checkpoint_extras = lambda folder: write_prompt_style(folder, self.style)
        self.engine = RolloutEngine(cfg.rollout, cfg.out, dtype=cfg.model.dtype, max_pixels=cfg.model.max_pixels,
                                    batch_size=cfg.eval.batch_size, max_tokens=max(
                                        cfg.difficulty.max_new_tokens, cfg.eval.max_new_tokens,
                                        cfg.grpo.max_completion_length))

    def _load_model(self) -> None:
        from inference.models import load_vlm

        if not self.engine.needs_local_model:
            self.engine.stop()  # the model comes back for training: rollout servers go (they share the GPUs)
        if self.model is None:
            import torch

            torch.manual_seed(self.cfg.seed)
            attn = self.cfg.model.attn_implementation
            kw = {"attn_implementation": attn} if attn else {}
            self.model, self.processor = load_vlm(self.model_dir, dtype=self.cfg.model.dtype,
                                                  max_pixels=self.cfg.model.max_pixels, **kw)

    def _loop_model(self) -> None:
        """Load the model for a loop's training phase (RL or SFT): ``model.freeze_vision`` holds its vision tower."""
        self._load_model()
        if self.cfg.model.freeze_vision:
            from inference.models import freeze_vision_tower

            n = freeze_vision_tower(self.model)
            logger.info("vision tower frozen for this phase (%.2fM parameters)", n / 1e6)

    def _policy(self) -> Any:
        from inference.policy import VLMPolicy

        self._load_model()
        return VLMPolicy(self.model, self.processor, max_new_tokens=self.cfg.difficulty.max_new_tokens,
                         batch_size=self.cfg.eval.batch_size)

    def _engine(self) -> RolloutEngine:
        """The rollout engine, serving the current checkpoint (``server``: replicas launched once per checkpoint)."""
        self.engine.use(self.model_dir, self._policy, release=self._release_model)
        return self.engine

    def _release_model(self) -> None:
        """Free the in-memory model for the rollout servers (training reloads the committed checkpoint)."""
        self.model = self.processor = None

    def _journal(self, step: str, **meta: Any) -> Any:
        """The rollout journal of ``step`` (finished rollouts are not generated again on --resume)."""
        return self.engine.journal(step, model=self.state.model_path, **meta)

    def _peft(self) -> Any:
        lc = self.cfg.model.lora
        if not lc.enabled:
            return None
        from peft import LoraConfig

        from inference.models import VISION_TOWER_MODULES

        # model.freeze_vision: no adapters in the vision tower either ("all-linear" would put them there)
        exclude = VISION_TOWER_MODULES if self.cfg.model.freeze_vision else None
        return LoraConfig(task_type="CAUSAL_LM", r=lc.r, lora_alpha=lc.alpha, lora_dropout=lc.dropout,
                          target_modules=lc.target_modules, exclude_modules=exclude)

    def _episode_roller(self, journal: Any = None) -> Any:
        if not self.cfg.data.env_tasks:
            return None
        from training.algorithm.env_rollouts import EpisodeRoller

        return EpisodeRoller(self.engine, max_steps=self.cfg.data.env_max_steps,
                             max_new_tokens=self.cfg.grpo.max_completion_length, style=self.style, journal=journal)

    def _data(self) -> dict[str, list[EmbodiedSample]]:
        if not hasattr(self, "_data_cache"):
            d = data_sources.read_data(self.out / "data")
            if self.cfg.data.env_tasks:
                from training.algorithm.env_rollouts import episode_samples

                d["train"] += episode_samples(self.cfg.data.env_tasks, self.cfg.data.env_seeds, self.cfg.data.seed)
                offset = data_sources.VALIDATION_SEED_OFFSET if self.cfg.data.eval_split == "validation" else \
                    data_sources.HELDOUT_SEED_OFFSET
                d["heldout"] += episode_samples(self.cfg.data.env_tasks, self.cfg.data.env_heldout_seeds,
                                                self.cfg.data.seed + offset)
            self._data_cache = d
        return self._data_cache

    def _evaluate(self, tag: str) -> dict[str, Any]:
        """Held-out (QA and closed-loop) and general replay through the benchmark runner, in process."""
        cfg, dc = self.cfg, self.cfg.data
        episodes = heldout_episodes(dc, cfg.grpo.max_completion_length)
        sampled = self._sampled_eval(tag) if cfg.eval.sampled_k > 0 else None
        res = evaluate(self._engine().backend, self.model_dir, self.out / "data",
                       self.out / "eval" / tag.replace("/", "-"), tag=tag, seq=len(self.state.completed),
                       compute_s=self.state.compute_s, frames=dc.frames, max_new_tokens=cfg.eval.max_new_tokens,
                       episodes=episodes, with_general=bool(self._data()["general"] or self._data()["general_eval"]),
                       step_prompt=dc.env_prompt, progress=self.progress, teacher_calls=self.state.teacher_calls,
                       sampled=sampled)
        held, gen = res["heldout"], res["general"]
        logger.info("eval %s: held-out %.1f (n=%d)%s", tag, held["overall"], held["n"],
                    f", general replay {gen['overall']:.1f}" if gen else "")
        if is_main():  # the run's own TensorBoard run: heldout/<capability> per loop and per compute second
            log_evaluation(self.out, self.state.loop, res)
        return {"overall": held["overall"], "general": gen["overall"] if gen else None,
                "compute_s": self.state.compute_s}

    def _sampled_eval(self, tag: str) -> dict[str, Any]:
        """Held-out QA pass@1 over ``eval.sampled_k`` sampled answers, on the rollout engine."""
        ec = self.cfg.eval
        journal = self._journal(f"eval-{tag.replace('/', '-')}-sampled", temperature=ec.sampled_temperature,
                                max_tokens=ec.max_new_tokens)
        qa = loadable([s for s in self._data()["heldout"] if not s.metadata.get("env_id")], self.loader)
        seed = self.cfg.seed + SAMPLED_EVAL_SEED_OFFSET  # torch's generators in process, per-request seeds on servers
        return sampled_eval(QARoller(self._engine(), self.loader, ec.max_new_tokens, journal=journal, seed=seed), qa,
                            ec.sampled_k, ec.sampled_temperature, tag, self.progress, seed=seed)
