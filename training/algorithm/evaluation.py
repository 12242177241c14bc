"""The metaloop's evaluations run the benchmark runner in process, around the live model (no reload from disk).

One evaluation = one ``dppo eval`` run into ``<run>/eval/<tag>/``, on the rollout engine's backend
(:mod:`training.algorithm.rollout_engine`): ``local``, an ``hf`` backend wrapping the current policy
(:class:`benchmarks.backends.hf.HFBackend` with ``policy=``); ``server`` / ``openai``, the served replicas:

* ``heldout_qa``: the ``tabletop_qa`` task on the held-out split (``data/heldout.jsonl``), each sample rendered by the
  one sample renderer exactly as in training (``data.frames`` video frames), scored by
  :func:`dppo_embodied.metrics.score_sample` counting **success** (the ``sample_metrics`` scorer's ``score:
  success``), the RL reward's definition;
* ``heldout_closed_loop`` (recipes with ``data.env_tasks``): the closed-loop suite (:mod:`benchmarks.closed_loop`)
  on the held-out seeds of every env, greedy, ``data.env_max_steps`` decisions at most, in the recipe's step prompt
  style;
* ``general_replay``: ``tabletop_qa`` on the general-evaluation samples (``data/general_eval.jsonl``: the general
  suite's evaluation stream, never trained on), the forgetting check; on the replay set itself
  (``data/general.jsonl``, recall) where a run has none (a ``data.general`` file without ``data.general_eval``, or a
  run folder prepared before the file existed).

The runner writes one ``samples.jsonl`` per task and one ``results.json``/``results.md``; this module adds the
metaloop's figures to that same ``results.json`` under ``"metaloop"`` (:func:`read_evaluations` reads them back for
the summary, the curve and ``dppo train compare``): per-capability success over the held-out samples (a sample
counts for each of its capability tags; QA samples and episodes pooled), their counts, ``overall`` (mean success),
``n``, and the same for general replay. Under a launcher the runner shards the QA samples over ranks and rank 0
merges; every rank returns rank 0's figures.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.backends.base import Backend
from benchmarks.records import read_records
from benchmarks.results import load_results, save_results
from benchmarks.runner import run
from benchmarks.settings import RunSettings
from benchmarks.task import Selection, TaskManager, TaskSpec
from training.algorithm.data_sources import general_eval_path
from training.algorithm.data_sources_config import DataSettings

logger = logging.getLogger(__name__)

HELDOUT_QA, HELDOUT_EPISODES, GENERAL = "heldout_qa", "heldout_closed_loop", "general_replay"

#: Capability tags of closed-loop episodes (as the training episode samples carry them).
EPISODE_CAPABILITIES = ["decision_planning", "affordance_function"]


@dataclasses.dataclass(frozen=True)
class EpisodeSettings:
    """The held-out closed-loop episodes of an evaluation.

    Attributes:
        env_ids: gymnasium ids.
        seeds: seeds per env.
        seed_start: the first seed (consecutive seeds follow).
        max_steps: decisions per episode at most.
        max_new_tokens: generation cap per decision.
    """

    env_ids: tuple[str, ...]
    seeds: int
    seed_start: int
    max_steps: int
    max_new_tokens: int


def heldout_episodes(data: DataSettings, max_new_tokens: int) -> EpisodeSettings | None:
    """The held-out closed-loop episodes of a recipe (the seeds :func:`~training.algorithm.env_rollouts.
    episode_samples` gives the held-out split), or ``None`` without ``data.env_tasks``."""
    if not data.env_tasks:
        return None
    from training.algorithm.data_sources import HELDOUT_SEED_OFFSET, VALIDATION_SEED_OFFSET
    from training.algorithm.env_rollouts import episode_samples

    offset = VALIDATION_SEED_OFFSET if data.eval_split == "validation" else HELDOUT_SEED_OFFSET
    first = episode_samples(data.env_tasks[:1], 1, data.seed + offset)[0]
    return EpisodeSettings(tuple(data.env_tasks), data.env_heldout_seeds, int(first.metadata["seed"]),
                           data.env_max_steps, max_new_tokens)


def qa_spec(task: str, max_new_tokens: int) -> TaskSpec:
    """The ``tabletop_qa`` task under another name, scoring success, with a generation cap."""
    base = TaskManager().get("tabletop_qa")
    return dataclasses.replace(base, task=task, scorer_options={**base.scorer_options, "score": "success"},
                               generation=dataclasses.replace(base.generation, max_new_tokens=max_new_tokens))


def episode_spec(env_ids: Iterable[str], seeds: int, seed_start: int, max_steps: int,
                 max_new_tokens: int) -> TaskSpec:
    """The closed-loop suite on ``env_ids`` (subtask = the id's last part), ``seeds`` consecutive seeds each."""
    envs = {env_id.split("/")[-1]: env_id for env_id in env_ids}
    base = TaskManager().get("tabletop_closed_loop")
    return dataclasses.replace(
        base, task=HELDOUT_EPISODES, subtasks=list(envs), capabilities={"default": list(EPISODE_CAPABILITIES)},
        adapter_options={"envs": envs, "seeds": seeds, "seed_start": seed_start, "max_steps": max_steps},
        generation=dataclasses.replace(base.generation, max_new_tokens=max_new_tokens, temperature=0.0))


def summarize(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Per-capability success (each record counts for each of its tags; ``untagged`` without tags), counts,
    ``overall`` (mean over records) and ``n`` from scored runner records. Success is on the one score scale of
    every summary, result and report, 0-100 (the runner's per-sample scores are 0-1)."""
    caps: dict[str, list[float]] = defaultdict(list)
    scores = []
    for rec in records:
        score = float(rec.get("score") or 0.0)
        scores.append(score)
        for c in rec.get("capabilities") or ["untagged"]:
            caps[c].append(score)
    return {"per_capability": {c: 100.0 * sum(v) / len(v) for c, v in sorted(caps.items())},
            "counts": {c: len(v) for c, v in sorted(caps.items())},
            "overall": 100.0 * sum(scores) / len(scores) if scores else 0.0, "n": len(scores)}


def closed_loop_success(records: Iterable[dict[str, Any]]) -> dict[str, float]:
    """Held-out closed-loop success per environment (``{"TabletopPick-v0": x}``, 0-100) from the episode suite's
    scored runner records (each record's ``subtask`` is its environment)."""
    by_env: dict[str, list[float]] = defaultdict(list)
    for rec in records:
        by_env[str(rec.get("subtask") or "episodes")].append(float(rec.get("score") or 0.0))
    return {env: round(100.0 * sum(v) / len(v), 2) for env, v in sorted(by_env.items())}


def evaluate(backend: Backend, model_path: str, data_dir: Path, out: Path, *, tag: str, seq: int, compute_s: float,
             frames: int, max_new_tokens: int, episodes: EpisodeSettings | None = None,
             with_general: bool = True, step_prompt: str | None = None, progress: bool = False,
             teacher_calls: int = 0, sampled: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run one evaluation into ``out`` (``<run>/eval/<tag>``) and return its ``"metaloop"`` figures (every rank).

    Args:
        backend: the rollout engine's backend (it serves ``model_path``).
        model_path: the checkpoint (named in ``results.json``).
        data_dir: the run's data folder (``heldout.jsonl``, ``general_eval.jsonl`` or ``general.jsonl``).
        out: the evaluation folder.
        tag: the evaluation's name (``base``, ``k1/rl``...).
        seq: its position among the run's committed steps (orders the curve).
        compute_s: training compute spent so far.
        frames: video frames per clip (the recipe's ``data.frames``, as in training).
        max_new_tokens: generation cap of the QA tasks.
        episodes: the held-out closed-loop episodes, if the recipe has env tasks.
        with_general: evaluate general replay too.
        step_prompt: the closed-loop step prompt style of the policy.
        progress: progress bars.
        teacher_calls: teacher calls spent so far (the ablation's second budget axis, docs/ablation.md).
        sampled: held-out sampled success (:func:`sampled_success`), recorded beside the greedy figures.
    """
    from training.runs.distributed import broadcast, is_main

    selections = [Selection(qa_spec(HELDOUT_QA, max_new_tokens))]
    paths = {HELDOUT_QA: str(data_dir / "heldout.jsonl")}
    if episodes is not None:
        selections.append(Selection(episode_spec(episodes.env_ids, episodes.seeds, episodes.seed_start,
                                                 episodes.max_steps, episodes.max_new_tokens)))
    if with_general:
        selections.append(Selection(qa_spec(GENERAL, max_new_tokens)))
        paths[GENERAL] = str(general_eval_path(data_dir))
    label = "hf (in process)" if backend.name == "hf" else f"{backend.name} (rollout servers)"
    settings = RunSettings(out=out, data_paths=paths, frames=frames, progress=progress, model=model_path,
                           backend=label, step_prompt=step_prompt)
    run(selections, backend, settings)
    figures = None
    if is_main():
        records = {s.spec.task: list(read_records(out / s.spec.task / "samples.jsonl").values()) for s in selections}
        held = summarize(records[HELDOUT_QA] + records.get(HELDOUT_EPISODES, []))
        general = summarize(records[GENERAL]) if with_general else None
        figures = {"tag": tag, "seq": seq, "compute_s": compute_s, "teacher_calls": teacher_calls, "heldout": held,
                   "general": general, **({"heldout_sampled": sampled} if sampled else {})}
        if episodes is not None:
            figures["closed_loop"] = closed_loop_success(records[HELDOUT_EPISODES])
        data = load_results(out)
        data["metaloop"] = figures
        save_results(out, data)
    return broadcast(figures)


#: the sampled evaluation's generators are seeded with the run's seed plus this (``Metaloop._sampled_eval``)
SAMPLED_EVAL_SEED_OFFSET = 7919


def sampled_eval(roller: Any, questions: Sequence[Any], k: int, temperature: float, tag: str,
                 progress: bool = False, seed: int | None = None) -> dict[str, Any]:
    """Held-out QA pass@1 averaged over ``k`` answers per question at ``temperature``, rolled by ``roller`` (a
    :class:`training.algorithm.difficulty.QARoller` on the rollout engine; the difficulty estimator's rollouts, not
    counted as training compute).

    With ``seed``, in-process sampling draws from torch's generators seeded with it and forked from the run's
    (common random numbers: two evaluations of one model give one number, and a phase's before/after difference is
    not buried under sampling noise; the training randomness after the evaluation is left as it was). Server
    engines sample with their own generators: give ``roller`` the same seed (``QARoller(seed=...)``) and each of
    the k answers to a question is sent with its own per-request seed, so they too repeat from run to run.
    """
    import torch

    from training.algorithm.difficulty import estimate_success_rates

    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []  # this rank's device only
    with torch.random.fork_rng(devices=devices, enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        table = estimate_success_rates(questions, roller, k, temperature, progress=progress, desc="sampled eval")
    res = sampled_success(table, k, temperature)
    logger.info("eval %s: held-out sampled pass@1 %.1f (k=%d, T=%.1f)", tag, res["overall"], k, temperature)
    return res


def sampled_success(table: dict[str, Any], k: int, temperature: float) -> dict[str, Any]:
    """Held-out sampled success from an SR table of the held-out questions (``k`` answers each at ``temperature``):
    ``overall`` = pass@1 averaged over the answers and questions, on the 0-100 scale, with ``n``, ``k`` and the
    temperature."""
    srs = [float(r.sr) for r in table.values()]
    overall = round(100.0 * sum(srs) / len(srs), 2) if srs else 0.0
    return {"overall": overall, "n": len(srs), "k": k, "temperature": temperature}
