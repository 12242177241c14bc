"""The DPPO metaloop (Deliberate Practice Policy Optimization, arXiv 2511.16602), top to bottom.

Launch::

    dppo train --config training/recipes/demo.yaml [--output-dir DIR] [--resume] [key=value ...]
    accelerate launch --config_file training/recipes/accelerate/fsdp2.yaml -m training.cli \
        --config training/recipes/qwen25vl_7b.yaml

Algorithm (one run; K loops, each RL then SFT, [TR] "RL-Refine -> Diagnose -> SFT"):

    prepare      data (candidates, held-out, general replay) and the model; optional brief pre-training
    eval_base    held-out success per capability of the starting policy
    for k = 1..K:
      1 horizon  candidates whose clip length fits this loop's horizon ([TR] < 32 s, then < 64 s)
      2 difficulty  T sampled rollouts per candidate -> SR, difficulty 1 - SR (persisted: sr/k.json)
      3 buffer   drop trivial (SR = 1), route intractable (SR <= thr) to the weakness pool, cap task and
                 capability shares; `sampling: random` for the ablation (buffers/k.json)
      4 RL       GRPO on the buffer, reward λ_f·format + λ_t·task (dppo_embodied.metrics), per-sample rewards
                 recorded by id; stop when mean_i TS_i >= 0.7 or the step budget ends (checkpoint ckpt/kK-rl)
      5 diagnose re-roll buffer + weakness pool; failures; weakness report by capability (reports/)
      6 SFT      teacher fills failures (kept only when score_sample verifies them) = D_weak; D_assoc = pool
                 samples of the weak capabilities + fresh synthesised ones; D_gen = general replay; SFTTrainer
      7 eval     held-out per capability and general replay (forgetting)
    final        summary.json, summary.md (before/after table), curve.png

The steps of a run are planned once (:func:`training.plan.plan`): the ablation modes (``grpo_only``, ``sft_only``,
``sft_then_rl``, ``sft_pool``) change the steps there. Every step commits its artifacts atomically and is then
recorded in ``state.json`` (:mod:`training.runs.committed_run`): after a crash or ``kill -9``, ``--resume``
restarts at the first unfinished step from the last committed checkpoint.

Every generation outside the GRPO trainer (difficulty, diagnosis, evaluation, closed-loop episodes, the RL phase's
episode rows) runs on the rollout engine (``rollout:``, :mod:`training.algorithm.rollout_engine`): in process
(``local``), on replicas of the current checkpoint launched before a generation step and stopped before the next
training phase (``server``), or on a fleet the user runs (``openai``). Finished rollouts are journaled per step, so a
resumed step sends only the missing ones.

Deviations from the paper (all [D], docs/training.md): the per-task saturation score TS_i is our definition
(:mod:`training.algorithm.stagnation`) computed from GRPO's own rollouts; thresholds, ratios, λ's and T are ours;
diagnosis uses rule-based verification only (no VLM judge or human spot-check); closed-loop tasks are trained with
state-reset GRPO whose reward is the rest of the episode (:mod:`training.algorithm.env_rollouts`).
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dppo_embodied.config import save_config
from dppo_embodied.io import atomic_write_json, read_json
from dppo_embodied.prompts import STEP_PROMPT_FILE, read_prompt_style, write_prompt_style
from dppo_embodied.types import EmbodiedSample, load_samples, write_samples
from training.algorithm import data_sources
from training.algorithm.diagnosis import diagnose, write_report
from training.algorithm.difficulty import (
    Buffer,
    QARoller,
    SRRecord,
    build_buffer,
    estimate_success_rates,
    failure_summary,
    sr_summary,
    table_from_json,
    table_to_json,
)
from training.algorithm.rewards import SampleIndex
from training.algorithm.sample_io import horizon_of, loadable, tokenizer_corpus
from training.metaloop_config import MetaloopConfig
from training.metaloop_runtime import MetaloopRuntime
from training.phases.common import ComputeClock
from training.phases.grpo import run_grpo, zero_std_fraction
from training.phases.sft import mix, run_sft
from training.plan import Step, plan
from training.runs import report
from training.runs.distributed import barrier, is_main
from training.runs.state import commit_checkpoint

logger = logging.getLogger(__name__)


class Metaloop(MetaloopRuntime):
    """One DPPO run (see the module docstring). ``Metaloop(cfg).run()`` returns the summary dict.

    Committing steps, checkpoints and the compute budget are the run machinery of
    :class:`~training.runs.committed_run.CommittedRun`; the model, the rollout engine, the run's data and its
    evaluations are :class:`~training.metaloop_runtime.MetaloopRuntime`'s, whose constructor it takes.
    """

    # ------------------------------------------------------------------ the run
    def run(self, until: str | None = None) -> dict[str, Any]:
        """Run (or resume) the whole metaloop; return the summary.

        Args:
            until: stop after this step of the plan (e.g. ``"eval_base"``: a shared starting point for ablations);
                the summary is then empty.
        """
        import torch
        import transformers

        cfg = self.cfg
        torch.set_num_threads(cfg.threads)
        transformers.set_seed(cfg.seed)
        self.out.mkdir(parents=True, exist_ok=True)
        if is_main():
            save_config(cfg, self.out / "config.yaml")

        # -- the plan: prepare, [pretrain], eval_base, then K loops of the mode's steps (training.plan) -----------
        actions: dict[str, Callable[[Step], dict[str, Any] | None]] = {
            "prepare": lambda s: self._prepare(),                # data, model
            "pretrain": lambda s: self._pretrain(),              # optional brief SFT on the general suite
            "eval": lambda s: self._evaluate(s.tag),             # 7: held-out + replay
            "difficulty": lambda s: self._difficulty(s.loop),    # 1-3: horizon, SR, buffer
            "rl": lambda s: self._rl(s.loop),                    # 4: GRPO + stop rule
            "diagnosis": lambda s: self._diagnosis(s.loop),      # 5: failures, weaknesses
            "sft": lambda s: self._sft(s.loop, "diagnosed"),     # 6: D_weak ∪ D_assoc ∪ D_gen
            "sft_random": lambda s: self._sft(s.loop, "random"),  # sft_only / sft_then_rl: random teacher targets
            "sft_pool": lambda s: self._sft(s.loop, "pool"),      # sft_pool: the whole labelled pool + replay
            "sft_self": lambda s: self._sft(s.loop, "self"),      # rft: own verified rollouts + replay
        }
        loop = 0
        try:
            for step in plan(cfg):
                if step.loop != loop:  # entering metaloop iteration k
                    if not self._loop_fits(step.loop):
                        logger.info("compute budget spent (%.0f s); stopping before loop %d", self.state.compute_s,
                                    step.loop)
                        break
                    loop = self.state.loop = step.loop
                elif step.loop and step.kind != "eval" and self._phase_budget() <= 0:
                    # spent inside this loop (a matched variant): no diagnosis, teacher or SFT step past its budget;
                    # the loop's evaluation still reports the model as it is
                    logger.info("compute budget spent (%.0f s); skipping %s", self.state.compute_s, step.name)
                    continue
                self._step(step.name, lambda step=step: actions[step.kind](step))
                if step.name == until:
                    return {}
        finally:
            self.engine.stop()  # no rollout server outlives the run (nor a failed step: --resume relaunches)

        return self._finish()

    def _phase_budget(self) -> float:
        """Compute seconds a phase may still use: what is left, or no limit once a whole loop was begun."""
        return float("inf") if self.cfg.budget_rule == "whole_loops" else self._budget_left()

    def _loop_fits(self, k: int) -> bool:
        """Whether loop ``k`` may start under the budget rule (``MetaloopConfig.budget_rule``)."""
        left = self._budget_left()
        if self.cfg.budget_rule == "cut" or k <= 1 or math.isinf(left):
            return left > 0
        ends = [self.state.values.get(n, {}).get("compute_s") for n in ("eval_base" if k == 2 else f"k{k - 2}/eval",
                                                                       f"k{k - 1}/eval")]
        if None in ends:  # no record of the previous loop's cost (a mode without per-loop evaluation)
            return left > 0
        return left >= 0.5 * (ends[1] - ends[0])

    # ------------------------------------------------------------------ steps
    def _prepare(self) -> dict[str, Any]:
        cfg = self.cfg
        paths = data_sources.prepare_data(cfg.data, self.out / "data", progress=self.progress) if is_main() else {}
        barrier()
        if cfg.pretrain.steps > 0 and is_main():
            pre = data_sources.pretrain_data(cfg.data, cfg.pretrain.n_samples, cfg.pretrain.task_share,
                                             self.out / "data", templates=cfg.pretrain.task_templates)
            write_samples(pre, self.out / "data" / "pretrain.jsonl")
        barrier()
        if cfg.model.build_tiny:
            from inference.tiny_vlm import build_tiny_vlm

            folder = self.out / "base_model"
            if is_main():
                with_env = bool(cfg.data.env_tasks or cfg.pretrain.env_tasks)
                corpus = tokenizer_corpus(self.out / "data", with_env=with_env)
                pixels = cfg.model.max_pixels or 96 * 96

                def build(tmp: Path) -> None:
                    build_tiny_vlm(tmp, size=cfg.model.build_tiny, seed=cfg.seed, corpus=corpus, max_pixels=pixels)
                    write_prompt_style(tmp, self.style)

                commit_checkpoint(build, folder)
            barrier()
            self.state.model_path = self.inside(folder)
        else:
            self.state.model_path = cfg.model.path
            recorded = read_prompt_style(cfg.model.path)
            if (Path(cfg.model.path) / STEP_PROMPT_FILE).is_file() and recorded != self.style:
                logger.warning("%s was trained with the %r step prompt style; this run trains it with %r "
                               "(data.env_prompt) and records that with its checkpoints", cfg.model.path, recorded,
                               self.style)
        return {"data": {k: str(v) for k, v in paths.items()}, "model_path": self.state.model_path}

    def _pretrain(self) -> dict[str, Any]:
        cfg, pc = self.cfg, self.cfg.pretrain
        self._load_model()
        samples = loadable(self._pretrain_samples(), self.loader)
        demos = self._pretrain_demos()
        items = mix(demos, [], samples, [pc.env_share, 0, 1 - pc.env_share], pc.steps * pc.batch_size, cfg.seed)
        res = run_sft(self.model, self.processor, items, out_dir=self.out / "pretrain", max_steps=pc.steps,
                      learning_rate=pc.learning_rate, batch_size=pc.batch_size,
                      warmup_steps=min(20, pc.steps // 10), seed=cfg.seed, report_to=cfg.report_to,
                      loader=self.loader, phase="pre-training", lr_scheduler=pc.lr_scheduler)
        self._checkpoint("pretrained")
        return {"steps": res.steps, "seconds": res.compute_s, "env_demos": len(demos)}

    def _pretrain_demos(self) -> list[tuple[Any, str]]:
        """Verified oracle demonstrations of ``pretrain.env_tasks`` (their own seed stream, the run's step style)."""
        pc, dc = self.cfg.pretrain, self.cfg.data
        if not pc.env_tasks:
            return []
        from training.algorithm.env_rollouts import episode_samples, oracle_demos

        episodes = episode_samples(pc.env_tasks, pc.env_seeds, dc.seed + data_sources.PRETRAIN_SEED_OFFSET)
        return oracle_demos(episodes, dc.env_max_steps, dc.env_oracle, style=self.style)

    def _candidates(self, k: int) -> list[EmbodiedSample]:
        limit = self.cfg.horizon_for(k)
        cands = self._data()["train"]
        if limit is None:
            return cands
        kept = [s for s in cands if (h := horizon_of(s, self.cfg.horizon_unit)) is None or h <= limit]
        logger.info("horizon filter (loop %d, <= %g %s): %d of %d candidates", k, limit, self.cfg.horizon_unit,
                    len(kept), len(cands))
        return kept

    def _difficulty(self, k: int) -> dict[str, Any]:
        cfg, dc = self.cfg, self.cfg.difficulty
        skipped: list[dict[str, str]] = []
        cands = loadable(self._candidates(k), self.loader, skipped)
        engine = self._engine()
        journal = self._journal(f"k{k}-difficulty", temperature=dc.temperature, max_tokens=dc.max_new_tokens)
        with ComputeClock() as clock:
            table = estimate_success_rates(
                cands, QARoller(engine, self.loader, dc.max_new_tokens, return_texts=True, journal=journal),
                dc.rollouts, dc.temperature,
                episode_roller=self._episode_roller(journal), progress=self.progress,
                chunk=max(64, engine.backend.chunk_size // dc.rollouts))
        self.state.compute_s += clock.seconds
        buf = build_buffer(cands, table, dc, sampling=cfg.sampling, seed=cfg.seed + k)
        if is_main():
            atomic_write_json(self.out / "sr" / f"k{k}.json", table_to_json(table))
            atomic_write_json(self.out / "buffers" / f"k{k}.json", buf.__dict__)
        self._rank_dump(f"k{k}-difficulty", {"sr": table_to_json(table), "buffer": buf.__dict__})
        return {"candidates": len(cands), "skipped_media": skipped, "rl": len(buf.rl), "weak": len(buf.weak),
                "trivial": len(buf.trivial), "sr_by_task": sr_summary(table), "seconds": clock.seconds,
                "engine": self.engine.kind, **failure_summary(table)}

    def _buffer(self, k: int) -> tuple[dict[str, SRRecord], Buffer]:
        table = table_from_json(read_json(self.out / "sr" / f"k{k}.json", {}))
        buf = Buffer(**read_json(self.out / "buffers" / f"k{k}.json", {}))
        return table, buf

    def _rl(self, k: int) -> dict[str, Any]:
        cfg = self.cfg
        table, buf = self._buffer(k)
        data = self._data()
        by_id = {s.id: s for s in data["train"]}
        qa = [by_id[i] for i in buf.rl if i in by_id and not by_id[i].metadata.get("env_id")]
        episodes = [by_id[i] for i in buf.rl if i in by_id and by_id[i].metadata.get("env_id")]
        extra_rows: list[dict[str, Any]] = []
        extra_rewards: list[Any] = []
        extra_tasks: dict[str, str] = {}
        initial = {i: r.sr for i, r in table.items()}
        if episodes:
            from training.algorithm.env_rollouts import POOL, EpisodeReward, episode_rows

            pool = POOL
            extra_rows, extra_tasks, row_sr, states = episode_rows(
                episodes, self._engine(), table, max_steps=cfg.data.env_max_steps, seed=cfg.seed + k,
                max_new_tokens=cfg.grpo.max_completion_length, pool=pool, style=self.style,
                journal=self._journal(f"k{k}-rl-rows", temperature=1.0, max_tokens=cfg.grpo.max_completion_length))
            policy = self._policy()  # the live model finishes the reward episodes (servers stop here)
            initial.update(row_sr)
            extra_rewards = [EpisodeReward(policy, states, max_steps=cfg.data.env_max_steps,
                                           max_new_tokens=cfg.grpo.max_completion_length, pool=pool,
                                           style=self.style)]
        self._loop_model()
        dyn: dict[str, Any] = {}
        if cfg.grpo.dynamic_sampling.enabled:  # refills come from the QA candidates left out of the buffer
            taken = set(buf.rl)
            dyn = {"reserve": [s for s in self._candidates(k) if s.id not in taken and not s.metadata.get("env_id")],
                   "sampling": cfg.sampling, "policy": self._policy()}
        res = run_grpo(self.model, self.processor, qa, cfg.grpo, initial, out_dir=self.out / "rl" / f"k{k}",
                       seed=cfg.seed + k, report_to=cfg.report_to, index=SampleIndex(data["train"]),
                       extra_rows=extra_rows, extra_rewards=extra_rewards, extra_tasks=extra_tasks,
                       loader=self.loader, peft_config=self._peft(), budget_s=self._phase_budget(),
                       initial_rollouts=cfg.difficulty.rollouts, **dyn)
        self.state.compute_s += res.compute_s
        self._checkpoint(f"k{k}-rl")
        if is_main():
            atomic_write_json(self.out / "rl" / f"k{k}" / "phase.json", res.__dict__)
        self._rank_dump(f"k{k}-rl", {"steps": res.steps, "stopped_early": res.stopped_early,
                                     "stop_decisions": [r["stop"] for r in res.reports],
                                     "ts": [r["ts"] for r in res.reports]})
        return {"steps": res.steps, "stopped_early": res.stopped_early, "seconds": res.compute_s,
                "frac_reward_zero_std": zero_std_fraction(res.log_history),
                "final_ts": res.reports[-1]["ts"] if res.reports else None, "skipped_media": res.skipped,
                "dynamic_sampling": res.dynamic_sampling}

    def _diagnosis(self, k: int) -> dict[str, Any]:
        dc = self.cfg.difficulty
        _, buf = self._buffer(k)
        by_id = {s.id: s for s in self._data()["train"]}
        targets = [by_id[i] for i in dict.fromkeys(buf.rl + buf.weak) if i in by_id]
        engine = self._engine()
        journal = self._journal(f"k{k}-diagnosis", temperature=dc.temperature, max_tokens=dc.max_new_tokens)
        with ComputeClock() as clock:
            roller = QARoller(engine, self.loader, dc.max_new_tokens, return_texts=True, journal=journal)
            d = diagnose(targets, roller, dc.rollouts, dc.temperature, failure_sr=dc.failure_sr,
                         episode_roller=self._episode_roller(journal), progress=self.progress)
        self.state.compute_s += clock.seconds
        if is_main():
            write_report(d, self.out / "reports", k)
        return {"failures": len(d.failures), "diagnosed": len(targets), "verified": len(d.verified),
                "weak_capabilities": d.weak_capabilities, "seconds": clock.seconds, "engine": self.engine.kind,
                **d.rollout_failures}

    def _sft(self, k: int, source: str) -> dict[str, Any]:
        """SFT on ``diagnosed`` failures (dppo), ``random`` teacher targets (sft_only, sft_then_rl), the whole
        labelled ``pool`` (sft_pool) or the policy's own verified rollouts (``self``: rft); every teacher target is
        paid through the teacher ledger (docs/ablation.md)."""
        from training.algorithm.sft_sources import gather, ledger_path
        from training.algorithm.teacher_budget import TeacherLedger

        cfg, sc = self.cfg, self.cfg.sft
        data = self._data()
        pool = [s for s in self._candidates(k) if not s.metadata.get("env_id")]
        episodes = [s for s in data["train"] if s.metadata.get("env_id")]
        rng = random.Random(cfg.seed + 100 * k)
        src_seed = rng.randrange(1 << 30) if source != "pool" else 0  # drawn on every rank: the mix seed agrees
        ledger = TeacherLedger.from_json(read_json(ledger_path(self.out), {}), budget=cfg.teacher.budget)
        src, ledger, n_synth = gather(source, k, self.out, cfg.data, cfg.teacher, sc, pool, episodes, self.loader,
                                      ledger, seed=cfg.seed, src_seed=src_seed)
        # teacher targets carry reasoning when the teacher gives it; general replay keeps its own (answer) format
        general = data["general"] + (self._pretrain_samples() if sc.replay_pretrain else [])
        items = mix(src.weak, src.assoc, loadable(general, self.loader), sc.ratios, sc.size,
                    seed=rng.randrange(1 << 30), own=src.own, own_weight=sc.self_weight)
        self._loop_model()

        def train(rows: list[tuple[Any, str]], steps: int, out: str, **kw: Any) -> Any:
            return run_sft(self.model, self.processor, rows, out_dir=self.out / "sft" / out, max_steps=steps,
                           learning_rate=sc.learning_rate, batch_size=sc.batch_size, warmup_steps=sc.warmup_steps,
                           seed=cfg.seed + k, report_to=cfg.report_to, trainer_overrides=sc.trainer,
                           loader=self.loader, peft_config=self._peft(), budget_s=self._phase_budget(), **kw)

        focus_steps, focus_s = 0, 0.0
        if sc.focus_steps and src.weak:  # D_weak (+ D_self) first, at the phase's full rate (sft.focus_steps)
            own = src.own if sc.focus_self else []
            pre = train(mix(src.weak, [], [], [1, 0, 0], sc.focus_steps * sc.batch_size, seed=cfg.seed + 100 * k + 1,
                            own=own, own_weight=sc.self_weight), sc.focus_steps, f"k{k}-focus", phase="SFT focus")
            self.state.compute_s += pre.compute_s
            focus_steps, focus_s = pre.steps, pre.compute_s
        res = train(items, sc.max_steps, f"k{k}", lr_scheduler=sc.lr_scheduler)
        self.state.compute_s += res.compute_s
        self.state.teacher_calls = ledger.spent
        if is_main():
            atomic_write_json(ledger_path(self.out), ledger.to_json())
        self._checkpoint(f"k{k}-sft")
        return {"steps": res.steps, "rows": res.rows, **src.info, "synthesized": n_synth, "focus_steps": focus_steps,
                "seconds": res.compute_s + focus_s, "skipped_media": res.skipped}

    def _pretrain_samples(self) -> list[EmbodiedSample]:
        """The base's pre-training samples (``data/pretrain.jsonl``; none without pre-training)."""
        path = self.out / "data" / "pretrain.jsonl"
        return load_samples(path)[0] if path.is_file() else []

    def _finish(self) -> dict[str, Any]:
        """summary.json, summary.md and curve.png from the committed evaluations (rank 0 writes)."""
        # DPPO's closing RL half-step (final_rl) runs as loop K+1 but is not a metaloop: count it apart
        closing = self.cfg.final_rl and self.cfg.mode == "dppo" and self.state.loop > self.cfg.loops
        return report.summarize_run(self.out, self.cfg.name, {"mode": self.cfg.mode, "sampling": self.cfg.sampling,
                                                              "loops_done": self.cfg.loops if closing
                                                              else self.state.loop,
                                                              "closing_rl": closing,
                                                              "compute_s": self.state.compute_s,
                                                              "teacher_calls": self.state.teacher_calls,
                                                              "checkpoint": self.state.model_path,
                                                              "sessions": self.state.sessions},
                                    write=is_main())


def run_metaloop(cfg: MetaloopConfig, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) a metaloop and return its summary."""
    return Metaloop(cfg, resume=resume, progress=progress).run()
