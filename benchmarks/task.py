"""Typed task specifications read from YAML, and the :class:`TaskManager` that finds and resolves them.

One YAML file per task under ``benchmarks/tasks/<suite>/`` (plus any folder given with ``--include-path``)::

    task: erqa
    suite: pelican
    dataset_id: FlagEval/ERQA
    layout: "erqa.jsonl (question, answer, question_type, images) + images/ex<i>_img<j>.jpg"
    card: []                      # the published card's `configs:` block, used when the folder has no README
    adapter: erqa                 # a name in ADAPTERS, or "package.module:function"
    scorer: erqa                  # a name in benchmarks.scoring.SCORERS, or "package.module:Class"
    scorer_options: {}            # named variants (e.g. mode: vlmevalkit)
    answer_type: mcq
    media: image                  # image | video | none | env
    prompt: {pre: "", post: "", system: null}
    generation: {max_new_tokens: 4096}
    capabilities:                 # per subtask ("default" for the rest)
      default: [spatial_geometric]
    capability_key: null          # or a doc meta field (question_type) whose values key `capabilities`

A group file has ``group`` and ``tasks`` keys (``pelican.yaml``). Everything is checked by
:func:`dppo_embodied.config.from_dict`: an unknown key or a wrong type is an error naming the file. There are no
``!function`` tags: code is reached through registered names or ``"module:attr"`` strings, loaded lazily.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dppo_embodied.config import from_dict, load_yaml
from dppo_embodied.errors import ConfigError, DataError, UnknownNameError
from dppo_embodied.registry import Registry
from dppo_embodied.taxonomy import validate_capabilities
from dppo_embodied.types import AnswerType

TASKS_DIR = Path(__file__).parent / "tasks"
MEDIA_KINDS = ("image", "video", "none", "env")

#: Adapter name -> "module:function". A function ``load(spec, root, subtasks) -> list[Doc]``.
ADAPTERS: Registry[Any] = Registry("benchmark adapter")
for _name in ("mvbench", "egoschema", "where2place", "phyx", "vsibench", "omni_spatial", "blink", "ref_spatial",
              "robo_spatial", "emb_spatial", "cosmos", "erqa", "egoplan", "tabletop_qa"):
    ADAPTERS.register(_name, f"benchmarks.adapters.{_name}:load")
ADAPTERS.register("closed_loop", "benchmarks.closed_loop:load")


@dataclass
class PromptSpec:
    """Prompt pieces around the question: ``pre + question + post`` (adapters document exceptions)."""

    pre: str = ""
    post: str = ""
    system: str | None = None


@dataclass
class GenerationSpec:
    """Generation settings of a task (the official ones; ``--max-new-tokens`` overrides)."""

    max_new_tokens: int = 4096
    temperature: float = 0.0

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ConfigError(f"generation.max_new_tokens must be >= 1, got {self.max_new_tokens}")


@dataclass
class TaskSpec:
    """One benchmark task (see the module docstring for the YAML form)."""

    task: str
    adapter: str
    scorer: str
    suite: str = ""
    description: str = ""
    dataset_id: str = ""
    dataset_config: str | None = None
    revision: str | None = None
    layout: str = ""
    card: list[dict[str, Any]] = field(default_factory=list)
    answer_type: AnswerType = AnswerType.MCQ
    media: str = "image"
    metric: str = "accuracy"
    higher_is_better: bool = True
    subtasks: list[str] = field(default_factory=list)
    capabilities: dict[str, list[str]] = field(default_factory=dict)
    capability_key: str | None = None
    prompt: PromptSpec = field(default_factory=PromptSpec)
    generation: GenerationSpec = field(default_factory=GenerationSpec)
    scorer_options: dict[str, Any] = field(default_factory=dict)
    adapter_options: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def __post_init__(self) -> None:
        if not self.task or not self.task.replace("_", "").isalnum():
            raise ConfigError(f"task name {self.task!r} must be a non-empty snake_case word")
        if self.media not in MEDIA_KINDS:
            raise ConfigError(f"task {self.task}: media {self.media!r} is not one of {list(MEDIA_KINDS)}")
        try:
            self.capabilities = {k: validate_capabilities(v) for k, v in self.capabilities.items()}
        except DataError as e:
            raise ConfigError(f"task {self.task}: {e}") from e
        unknown = sorted(set(self.capabilities) - {"default", *self.subtasks})
        if unknown and self.capability_key is None:
            raise ConfigError(f"task {self.task}: capabilities for unknown subtask(s) {unknown}; "
                              f"valid: default, {', '.join(self.subtasks)}")

    def capabilities_of(self, subtask: str | None, meta: dict[str, Any] | None = None) -> list[str]:
        """Capability slugs of a doc: by ``meta[capability_key]`` when the task sets a key, else by subtask;
        ``default`` otherwise."""
        key = subtask
        if self.capability_key is not None and meta is not None:
            key = str(meta.get(self.capability_key))
        if key and key in self.capabilities:
            return list(self.capabilities[key])
        return list(self.capabilities.get("default", []))

    def apply_prompt(self, question: str) -> str:
        """``pre + question + post``."""
        return f"{self.prompt.pre}{question}{self.prompt.post}"


@dataclass
class GroupSpec:
    """A named list of tasks (``pelican``)."""

    group: str
    tasks: list[str]
    description: str = ""
    source: str = ""


@dataclass(frozen=True)
class Selection:
    """A resolved task with an optional subtask filter (``mvbench_action_sequence`` -> mvbench, [action_sequence])."""

    spec: TaskSpec
    subtasks: tuple[str, ...] | None = None


class TaskManager:
    """Finds task and group YAML files and resolves names.

    Args:
        include_paths: extra folders searched (recursively) for task/group YAML files, after the built-in ones.
    """

    def __init__(self, include_paths: Iterable[str | os.PathLike[str]] = ()) -> None:
        self.tasks: dict[str, TaskSpec] = {}
        self.groups: dict[str, GroupSpec] = {}
        for folder in [TASKS_DIR, *map(Path, include_paths)]:
            if not Path(folder).is_dir():
                raise ConfigError(f"task include path {folder} is not a folder")
            for path in sorted(Path(folder).rglob("*.yaml")):
                self._add(path)
        for g in self.groups.values():
            missing = [t for t in g.tasks if t not in self.tasks]
            if missing:
                raise ConfigError(f"group {g.group} ({g.source}) lists unknown task(s) {missing}")

    def _add(self, path: Path) -> None:
        data = load_yaml(path)
        data.setdefault("source", str(path))
        if "group" in data:
            g = from_dict(GroupSpec, data, source=str(path))
            self._check_free(g.group, path)
            self.groups[g.group] = g
        else:
            t = from_dict(TaskSpec, data, source=str(path))
            self._check_free(t.task, path)
            self.tasks[t.task] = t

    def _check_free(self, name: str, path: Path) -> None:
        other = self.tasks.get(name) or self.groups.get(name)
        if other is not None:
            raise ConfigError(f"name {name!r} in {path} is already defined in {other.source}; rename one of them")

    def names(self) -> list[str]:
        """All task and group names, sorted."""
        return sorted([*self.tasks, *self.groups])

    def subtask_names(self) -> dict[str, tuple[str, str]]:
        """``"<task>_<subtask>"`` -> ``(task, subtask)`` for every task with subtasks."""
        return {f"{t.task}_{s}": (t.task, s) for t in self.tasks.values() for s in t.subtasks}

    def get(self, name: str) -> TaskSpec:
        """The task called ``name`` (raises :class:`UnknownNameError` listing the valid ones)."""
        if name not in self.tasks:
            raise UnknownNameError("task", name, self.names())
        return self.tasks[name]

    def resolve(self, names: str | Iterable[str]) -> list[Selection]:
        """Expand a comma-separated list of tasks, groups and ``<task>_<subtask>`` names, keeping order.

        Several subtasks of one task merge into one selection; duplicates are dropped.
        """
        if isinstance(names, str):
            names = [n for n in names.split(",") if n.strip()]
        subs = self.subtask_names()
        order: list[str] = []
        chosen: dict[str, set[str] | None] = {}

        def add(task: str, subtask: str | None) -> None:
            if task not in chosen:
                order.append(task)
                chosen[task] = set() if subtask else None
            if subtask is None:
                chosen[task] = None
            elif chosen[task] is not None:
                chosen[task].add(subtask)  # type: ignore[union-attr]

        for raw in names:
            name = raw.strip()
            if name in self.groups:
                for t in self.groups[name].tasks:
                    add(t, None)
            elif name in self.tasks:
                add(name, None)
            elif name in subs:
                add(*subs[name])
            else:
                raise UnknownNameError("task or group", name, [*self.names(), *subs])
        if not order:
            raise ConfigError("no task given: pass --tasks NAME[,NAME...] (see `dppo list tasks`)")
        out = []
        for t in order:
            spec = self.tasks[t]
            sel = chosen[t]
            out.append(Selection(spec, None if sel is None else tuple(s for s in spec.subtasks if s in sel)))
        return out


def catalogue() -> list[tuple[str, str]]:
    """``dppo list tasks``: every task, group and subtask name with a one-line description."""
    tm = TaskManager()
    rows = [(g.group, f"group: {', '.join(g.tasks)}") for g in tm.groups.values()]
    for t in tm.tasks.values():
        subs = f" ({len(t.subtasks)} subtasks)" if t.subtasks else ""
        rows.append((t.task, f"[{t.suite}] {t.description or t.dataset_id}{subs}"))
    return sorted(rows)
