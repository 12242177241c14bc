"""Closed-loop suites in the same harness: simulated episodes driven by the model, success rate over seeds.

A closed-loop task (``media: env``) lists env ids as subtasks (``adapter_options.envs``: subtask -> env id) and
runs ``seeds`` episodes per env (``adapter_options.seeds``, from ``seed_start``; ``--limit N`` keeps the first N
seeds). Every decision is one backend request: the system prompt and per-step prompt of the text-action envelope
(:mod:`dppo_embodied.prompts`) with the current camera image; the env turns the raw text into an action
(:func:`envs.rollout.run_episode`). One record per episode (``response`` = the episode summary JSON), appended as it
finishes, so a killed run resumes at the next episode. The score is success (1/0); the metric is the success
rate per env and their mean. An env whose optional dependency is missing (gym-pusht) is skipped with the reason.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from benchmarks.adapters import make_doc
from benchmarks.backends.base import Backend, Request
from benchmarks.doc import Doc
from benchmarks.records import RecordWriter, read_records
from benchmarks.settings import RunSettings, progress_bar
from benchmarks.task import Selection, TaskSpec
from benchmarks.task_scoring import base_record, finalize_task
from dppo_embodied.errors import DependencyNotInstalled, DppoError
from dppo_embodied.prompts import DEFAULT_SKILLS, build_step_prompt, system_prompt

logger = logging.getLogger(__name__)


def episode_docs(spec: TaskSpec, subtasks: tuple[str, ...] | None, limit: int | None) -> list[Doc]:
    """One doc per (env, seed), id ``<subtask>/seed<seed>``."""
    envs_map: dict[str, str] = dict(spec.adapter_options.get("envs", {}))
    n = int(spec.adapter_options.get("seeds", 10))
    n = min(n, limit) if limit else n
    start = int(spec.adapter_options.get("seed_start", 1000))
    docs = []
    for sub in spec.subtasks:
        if subtasks is not None and sub not in subtasks:
            continue
        for seed in range(start, start + n):
            meta = {"env_id": envs_map[sub], "seed": seed}
            docs.append(make_doc(spec, f"{sub}/seed{seed}", "", None, sub, meta=meta))
    return docs


def load(spec: TaskSpec, root: Any = None, subtasks: tuple[str, ...] | None = None) -> list[Doc]:
    """Adapter form of :func:`episode_docs` (``dppo eval score`` of episode summaries)."""
    return episode_docs(spec, subtasks, None)


class _Actor:
    """``act(obs) -> text`` through a backend, with the envelope prompts and a short action history."""

    def __init__(self, backend: Backend, spec: TaskSpec, settings: RunSettings, skills: tuple[str, ...]) -> None:
        self.backend, self.skills = backend, skills
        self.system = system_prompt(skills)
        self.max_new_tokens = settings.max_new_tokens or spec.generation.max_new_tokens
        self.temperature = spec.generation.temperature
        self.history: list[str] = []
        self.first_prompt = ""

    def __call__(self, obs: dict[str, Any]) -> str:
        from PIL import Image

        prompt = build_step_prompt(str(obs.get("instruction", "")), str(obs.get("feedback", "")), self.history,
                                   self.skills)
        self.first_prompt = self.first_prompt or prompt
        out: list[str | Exception] = []
        req = Request("step", prompt, [Image.fromarray(obs["image"])], self.system, self.max_new_tokens,
                      self.temperature)
        self.backend.generate([req], lambda i, res: out.append(res))
        if not out or isinstance(out[0], Exception):
            raise DppoError(f"backend failed during the episode: {out[0] if out else 'no result'}")
        self.history.append(out[0].strip().replace("\n", " ")[:200])
        return out[0]


def _make_env(env_id: str, kwargs: dict[str, Any]) -> Any:
    import envs

    return envs.make(env_id, **kwargs)


def run_closed_loop(sel: Selection, backend: Backend, settings: RunSettings) -> dict[str, Any]:
    """Run (or resume) a closed-loop task and score it (success rate per env and overall)."""
    spec = sel.spec
    docs = episode_docs(spec, sel.subtasks, settings.limit)
    task_dir = settings.out / spec.task
    task_dir.mkdir(parents=True, exist_ok=True)
    done = read_records(task_dir / "samples.jsonl")
    todo = [d for d in docs if d.id not in done]
    env_kwargs = dict(spec.adapter_options.get("env_kwargs", {}))
    skills = tuple(spec.adapter_options.get("skills", DEFAULT_SKILLS))
    max_steps = spec.adapter_options.get("max_steps")
    skipped: dict[str, str] = {}
    bar = progress_bar(len(todo), spec.task, settings.progress)
    with RecordWriter(task_dir / "samples.jsonl") as writer:
        envs_cache: dict[str, Any] = {}
        try:
            for doc in todo:
                env_id = doc.meta["env_id"]
                if env_id in skipped:
                    bar.update(1)
                    continue
                try:
                    if env_id not in envs_cache:
                        envs_cache[env_id] = _make_env(env_id, env_kwargs)
                except DependencyNotInstalled as e:
                    skipped[env_id] = str(e)
                    logger.warning("%s: skipping %s: %s", spec.task, env_id, e)
                    bar.update(1)
                    continue
                from envs.rollout import run_episode

                actor = _Actor(backend, spec, settings, skills if "PushT" not in env_id else ())
                rec = base_record(doc)
                try:
                    ep = run_episode(envs_cache[env_id], actor, seed=int(doc.meta["seed"]), max_steps=max_steps)
                    summary = {"success": ep.success, "progress": ep.progress, "steps": ep.steps,
                               "invalid": ep.invalid, "return": ep.total_reward}
                    rec.update(prompt=actor.first_prompt, response=json.dumps(summary), error=None,
                               actions=[t["action"] for t in ep.transcript][:50])
                except DppoError as e:
                    rec.update(prompt=actor.first_prompt, response=None, error=f"episode: {e}")
                writer.write(rec)
                writer.sync()
                bar.update(1)
        finally:
            bar.close()
            for env in envs_cache.values():
                env.close()
    kept = [d for d in docs if d.meta["env_id"] not in skipped]
    entry = finalize_task(spec, kept, settings, sel.subtasks)
    if skipped:
        entry["details"]["skipped"] = skipped
        from benchmarks.results import load_results, save_results

        data = load_results(settings.out)
        data["tasks"][spec.task] = entry
        save_results(settings.out, data)
    return entry
