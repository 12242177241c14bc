"""Held-out evaluation per capability: greedy generation with :class:`inference.policy.VLMPolicy`, scored by
``benchmarks.metrics.score_sample`` (the benchmarks' own definition of success). Closed-loop samples are scored by
whole greedy episodes (:mod:`training.algorithm.env_rollouts`).

A sample counts for each of its capability tags; ``overall`` is the mean success over all samples.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from dppo_embodied.types import EmbodiedSample, format_answer
from training.algorithm.difficulty import Roller
from training.algorithm.rewards import is_episode, success_of
from training.algorithm.sample_io import MediaLoader, loadable, requests_for, task_of
from training.runs.distributed import gather_dict, shard

logger = logging.getLogger(__name__)


def evaluate(policy: Any, samples: Sequence[EmbodiedSample], loader: MediaLoader, max_new_tokens: int = 24,
             episode_roller: Roller | None = None, chunk: int = 256, progress: bool = False) -> dict[str, Any]:
    """Success per capability, per task and overall on ``samples`` (sharded over ranks, gathered).

    Returns:
        ``{"per_capability": {slug: success}, "overall": x, "n": n, "per_sample": {id: success}}``.
    """
    from tqdm.auto import tqdm

    mine = loadable(shard(list(samples)), loader)
    local: dict[str, Any] = {}
    qa = [s for s in mine if not is_episode(s)]
    ep = [s for s in mine if is_episode(s)]
    bar = tqdm(total=len(mine), desc="eval", disable=not progress, leave=False)
    examples: dict[str, Any] = {}
    for i in range(0, len(qa), chunk):
        part = qa[i:i + chunk]
        texts = policy.generate(requests_for(part, loader), max_new_tokens=max_new_tokens, temperature=0.0)
        for s, t in zip(part, texts, strict=False):
            local[s.id] = float(success_of(s, t)[1])
            task = task_of(s)
            if len(examples.setdefault(task, [])) < 3:
                examples[task].append({"id": s.id, "output": t[:200], "answer": format_answer(s)})
        bar.update(len(part))
    if ep:
        if episode_roller is None:
            raise ValueError(f"{len(ep)} closed-loop samples but no episode roller")
        for s, outs in zip(ep, episode_roller(ep, 1, 0.0), strict=False):
            local[s.id] = float(outs[0][1])
        bar.update(len(ep))
    bar.close()
    per_sample = gather_dict(local)
    res = summarize(samples, per_sample)
    res["examples"] = examples
    return res


def summarize(samples: Sequence[EmbodiedSample], per_sample: dict[str, float]) -> dict[str, Any]:
    """Aggregate per-sample success into per-capability and overall numbers."""
    caps: dict[str, list[float]] = defaultdict(list)
    tasks: dict[str, list[float]] = defaultdict(list)
    for s in samples:
        if s.id not in per_sample:
            continue
        for c in s.capabilities or ["untagged"]:
            caps[c].append(per_sample[s.id])
        tasks[task_of(s)].append(per_sample[s.id])
    vals = list(per_sample.values())
    return {
        "per_capability": {c: sum(v) / len(v) for c, v in sorted(caps.items())},
        "counts": {c: len(v) for c, v in sorted(caps.items())},
        "per_task": {t: sum(v) / len(v) for t, v in sorted(tasks.items())},
        "overall": sum(vals) / len(vals) if vals else 0.0,
        "n": len(vals),
        "per_sample": dict(sorted(per_sample.items())),
    }
