"""Closed-loop suites in the same harness: simulated episodes driven by the model, success rate over seeds.

A closed-loop task (``media: env``) lists env ids as subtasks (``adapter_options.envs``: subtask -> env id) and runs
``seeds`` episodes per env (``adapter_options.seeds``, from ``seed_start``; ``--limit N`` keeps the first N seeds;
``env_kwargs`` are passed to every env, e.g. ``skills``). Episodes run with the core's one episode runner
(:func:`dppo_embodied.episode.run_episode`): every decision is one backend request whose conversation is
:func:`dppo_embodied.episode.render_step` of the env's observation (instruction, feedback, history and skills all come
from the env), in the checkpoint's step prompt style (``RunSettings.step_prompt``, else the style recorded in the
backend's model folder, :func:`dppo_embodied.prompts.read_prompt_style`); the env turns the raw text into an action.
Episodes run concurrently (``RunSettings.parallel_episodes``, ``--parallel-episodes``, default 8): each worker thread
holds its own env instances (built on first use, reused across seeds, closed by that thread: a renderer's GL context
belongs to its thread; a reset with the seed fully determines an episode) and sends its decisions to the backend as
they come, so one episode's env step overlaps the others' requests (the ``openai`` backend and the fake one take
requests from several threads at once, ``thread_safe``; other backends get the waiting decisions in one batched call).
One record per episode (``response`` = the episode summary JSON), appended as it finishes, so a killed run resumes with
the episodes not yet written; the records and scores are the same for any ``parallel_episodes``. The score is success
(1/0); the metric is the success rate per env and their mean. An env whose optional dependency is missing (gym-pusht)
is skipped with the reason.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter, deque
from typing import Any

from benchmarks.adapters import make_doc
from benchmarks.backends.base import Backend
from benchmarks.doc import Doc
from benchmarks.records import RecordWriter, read_records
from benchmarks.settings import RunSettings, progress_bar
from benchmarks.task import Selection, TaskSpec
from benchmarks.task_scoring import base_record, finalize_task
from dppo_embodied.conversation import Conversation
from dppo_embodied.episode import run_episode
from dppo_embodied.errors import DependencyNotInstalled, DppoError
from dppo_embodied.generation import ChatRequest, GenerationSettings
from dppo_embodied.prompts import PromptStyle, check_prompt_style, read_prompt_style

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


class Decisions:
    """The episodes' way to the backend: ``ask(request) -> text`` from any worker thread.

    A backend whose ``thread_safe`` is true (``openai``, ``fake``) is called directly from each thread, so the
    requests of several episodes are in flight together. Any other backend (``hf``, ``vllm``) is called by one
    thread at a time: the first waiting thread takes every request queued so far and sends them as one batch while
    the others wait for their answer (requests that arrive meanwhile go in the next batch).
    """

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.direct = bool(getattr(backend, "thread_safe", False))
        self._lock = threading.Lock()
        self._queue: list[tuple[ChatRequest, list[str | Exception], threading.Event]] = []
        self._busy = False

    def ask(self, request: ChatRequest) -> str | Exception:
        """The backend's reply to one request (or the exception it reported)."""
        if self.direct:
            out: list[str | Exception] = []
            self.backend.generate([request], lambda i, res: out.append(res))
            return out[0] if out else DppoError("the backend returned no result")
        slot: list[str | Exception] = []
        done = threading.Event()
        with self._lock:
            self._queue.append((request, slot, done))
        while not done.is_set():
            with self._lock:
                lead = not self._busy and bool(self._queue)
                batch, self._queue = (self._queue, []) if lead else ([], self._queue)
                self._busy = self._busy or lead
            if not lead:
                done.wait(0.005)
                continue
            try:
                self.backend.generate([r for r, _, _ in batch], lambda i, res, b=batch: b[i][1].append(res))
            except Exception as e:  # the backend itself broke: every request of the batch fails with the reason
                for _, out, _ in batch:
                    out.append(e)
            finally:
                with self._lock:
                    self._busy = False
                for _, out, ev in batch:
                    if not out:
                        out.append(DppoError("the backend returned no result"))
                    ev.set()
        return slot[0]


class _Actor:
    """``act(conversation) -> text``: one backend request per decision."""

    def __init__(self, decisions: Decisions, doc_id: str, settings: GenerationSettings) -> None:
        self.decisions, self.doc_id, self.settings = decisions, doc_id, settings
        self.first_prompt = ""

    def __call__(self, conv: Conversation) -> str:
        self.first_prompt = self.first_prompt or conv.text
        res = self.decisions.ask(ChatRequest(conv, self.settings, self.doc_id))
        if isinstance(res, Exception):
            raise DppoError(f"backend failed during the episode: {res}")
        return res


class EpisodeQueue:
    """The episodes left, handed to worker threads so that few env instances are built: a worker keeps to the env
    ids it already holds an instance of; otherwise it takes the env id the fewest workers hold (most episodes left
    first). Within an env id, episodes go in dataset order."""

    def __init__(self, docs: list[Doc]) -> None:
        self._left: dict[str, deque[Doc]] = {}
        for d in docs:
            self._left.setdefault(d.meta["env_id"], deque()).append(d)
        self._holders: Counter[str] = Counter()
        self._lock = threading.Lock()

    def next(self, held: set[str]) -> Doc | None:
        """The next episode for a worker holding instances of ``held`` (``None`` when none is left)."""
        with self._lock:
            mine = [e for e in self._left if e in held and self._left[e]]
            if mine:
                env_id = max(mine, key=lambda e: len(self._left[e]))
            else:
                left = [e for e in self._left if self._left[e]]
                if not left:
                    return None
                env_id = min(left, key=lambda e: (self._holders[e], -len(self._left[e])))
                self._holders[env_id] += 1
            return self._left[env_id].popleft()

    def drained(self, env_id: str) -> bool:
        """No episode of ``env_id`` is left to hand out."""
        with self._lock:
            return not self._left.get(env_id)


def step_prompt_style(backend: Backend, settings: RunSettings) -> PromptStyle:
    """The step prompt style of the evaluated checkpoint: ``settings.step_prompt``, else the one recorded in the
    backend's model folder (``full`` when none is)."""
    if settings.step_prompt:
        return check_prompt_style(settings.step_prompt)
    return read_prompt_style(backend.model)


def _make_env(env_id: str, kwargs: dict[str, Any]) -> Any:
    import envs

    return envs.make(env_id, **kwargs)


def run_closed_loop(sel: Selection, backend: Backend, settings: RunSettings) -> dict[str, Any]:
    """Run (or resume) a closed-loop task, ``settings.parallel_episodes`` episodes at a time, and score it
    (success rate per env and overall)."""
    spec = sel.spec
    docs = episode_docs(spec, sel.subtasks, settings.limit)
    task_dir = settings.out / spec.task
    task_dir.mkdir(parents=True, exist_ok=True)
    done = read_records(task_dir / "samples.jsonl")
    todo = [d for d in docs if d.id not in done]
    max_steps = spec.adapter_options.get("max_steps")
    style = step_prompt_style(backend, settings)
    gen = GenerationSettings(max_tokens=settings.max_new_tokens or spec.generation.max_new_tokens,
                             temperature=spec.generation.temperature)
    skipped: dict[str, str] = {}
    env_kwargs = dict(spec.adapter_options.get("env_kwargs", {}))
    lock = threading.Lock()
    queue = EpisodeQueue(todo)
    errors: list[BaseException] = []
    decisions = Decisions(backend)
    bar = progress_bar(len(todo), spec.task, settings.progress)

    def episode(doc: Doc, envs_: dict[str, Any], writer: RecordWriter) -> None:
        env_id = doc.meta["env_id"]
        if env_id in skipped:
            return
        if env_id not in envs_:
            try:
                envs_[env_id] = _make_env(env_id, env_kwargs)
            except DependencyNotInstalled as e:
                with lock:
                    if env_id not in skipped:
                        logger.warning("%s: skipping %s: %s", spec.task, env_id, e)
                    skipped[env_id] = str(e)
                return
        actor = _Actor(decisions, doc.id, gen)
        rec = base_record(doc)
        try:
            ep = run_episode(envs_[env_id], actor, seed=int(doc.meta["seed"]), max_steps=max_steps, style=style)
            summary = {"success": ep.success, "progress": ep.progress, "steps": ep.steps, "invalid": ep.invalid,
                       "return": ep.total_reward}
            rec.update(prompt=actor.first_prompt, response=json.dumps(summary), error=None,
                       actions=[t["action"] for t in ep.transcript][:50])
        except DppoError as e:
            rec.update(prompt=actor.first_prompt, response=None, error=f"episode: {e}")
        with lock:
            writer.write(rec)
            writer.sync()

    def worker(writer: RecordWriter) -> None:
        """Takes the next episode until none is left; its env instances live and die in this thread (a
        renderer's GL context belongs to the thread that made it)."""
        envs_: dict[str, Any] = {}
        try:
            while not errors:
                doc = queue.next(set(envs_))
                if doc is None:
                    return
                for env_id in [e for e in envs_ if e != doc.meta["env_id"] and queue.drained(e)]:
                    envs_.pop(env_id).close()  # nothing of that env is left: free its instance
                try:
                    episode(doc, envs_, writer)
                finally:
                    with lock:
                        bar.update(1)
        except BaseException as e:  # not an episode's own failure (a broken writer...): stop and re-raise
            errors.append(e)
        finally:
            for env in envs_.values():
                env.close()

    with RecordWriter(task_dir / "samples.jsonl") as writer:
        n = max(1, min(settings.parallel_episodes, len(todo)))
        threads = [threading.Thread(target=worker, args=(writer,), name=f"dppo-episode-{k}", daemon=True)
                   for k in range(n)]
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            bar.close()
    if errors:
        raise errors[0]
    kept = [d for d in docs if d.meta["env_id"] not in skipped]
    entry = finalize_task(spec, kept, settings, sel.subtasks)
    if skipped:
        entry["details"]["skipped"] = skipped
        from benchmarks.results import load_results, save_results

        data = load_results(settings.out)
        data["tasks"][spec.task] = entry
        save_results(settings.out, data)
    return entry
