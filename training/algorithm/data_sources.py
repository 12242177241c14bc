"""Candidates, held-out split, general replay and fresh synthesis — from JSONL files or a procedural generator.

``data.generator`` names an :mod:`envs.qa` suite (``tabletop-qa``) or any ``"module:function"`` with the same
signature as :func:`envs.qa.generate` (``suite, n, seed, capabilities, out_dir, image_size, progress`` keywords;
extra keywords it does not accept are not passed). Held-out samples come from the generator's held-out split when it
has a ``split`` argument, else from a disjoint seed range (seed + 1,000,000); fresh D_assoc synthesis uses yet
other seeds (seed + 2,000,000 + 10,000·loop). Everything generated is written to ``<run>/data/*.jsonl`` once, so
a resumed run reads exactly the same samples.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dppo_embodied.errors import ConfigError, DataError
from dppo_embodied.registry import load_entry_point
from dppo_embodied.types import EmbodiedSample, load_samples, write_samples
from training.algorithm.data_sources_config import DataSettings

logger = logging.getLogger(__name__)

HELDOUT_SEED_OFFSET = 1_000_000
SYNTH_SEED_OFFSET = 2_000_000
VALIDATION_SEED_OFFSET = 3_000_000
PRETRAIN_SEED_OFFSET = 4_000_000


def resolve_generator(name: str) -> Callable[..., list[EmbodiedSample]]:
    """The generator function for ``name`` (an envs.qa suite or ``module:function``)."""
    if ":" in name:
        return load_entry_point(name)
    from envs import qa

    def gen(**kw: Any) -> list[EmbodiedSample]:
        return qa.generate(suite=name, **{k: v for k, v in kw.items() if k != "suite"})

    gen.__wrapped__ = qa.generate  # type: ignore[attr-defined]
    return gen


def _accepted(fn: Callable[..., Any]) -> set[str] | None:
    target = getattr(fn, "__wrapped__", fn)
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return set(params)


def generate(name: str, *, suite: str, n: int, seed: int, out_dir: Path, capabilities: Sequence[str] = (),
             templates: Sequence[str] = (), image_size: int = 96, split: str = "train",
             progress: bool = False, difficulty: dict[str, Any] | None = None) -> list[EmbodiedSample]:
    """Call a generator with the keywords it accepts; filter by template; top up until ``n`` samples.

    Raises:
        ConfigError: unknown generator.
        DataError: the generator cannot produce ``n`` samples of the requested templates.
    """
    if n == 0:
        return []
    try:
        fn = resolve_generator(name)
    except ImportError as e:
        raise ConfigError(f"data.generator: cannot import the generator {name!r} ({e})") from e
    accepted = _accepted(fn)
    out: list[EmbodiedSample] = []
    seen: set[str] = set()
    offset = 0
    for attempt in range(8):
        native = bool(templates) and accepted is not None and "templates" in accepted
        kw: dict[str, Any] = {"suite": suite, "n": (n - len(out)) * (3 if templates and not native else 1),
                              "seed": seed + offset, "capabilities": list(capabilities) or None,
                              "out_dir": str(out_dir / f"part{attempt}" if attempt else out_dir),
                              "image_size": image_size, "progress": progress}
        if native:
            kw["templates"] = list(templates)
        if difficulty:
            kw["difficulty"] = dict(difficulty)
        if split != "train":
            if accepted is not None and "split" in accepted:
                kw["split"] = split
            else:
                kw["seed"] = seed + offset + HELDOUT_SEED_OFFSET
        if accepted is not None:
            kw = {k: v for k, v in kw.items() if k in accepted}
        batch = fn(**kw)
        for s in batch:
            if s.id in seen or (templates and s.metadata.get("template") not in templates):
                continue
            seen.add(s.id)
            out.append(s)
        if len(out) >= n:
            return out[:n]
        offset += 100_003 * (attempt + 1)
    raise DataError(f"generator {name!r} produced {len(out)} of {n} samples for templates {list(templates)}; "
                    "check data.templates against the generator's templates")


#: The files of a run's data folder: candidates, the evaluation split, the general replay set (D_gen) and the
#: forgetting check's general samples (never trained on).
GENERAL_EVAL = "general_eval"
DATA_FILES = ("train", "heldout", "general", GENERAL_EVAL)


def general_eval_path(data_dir: Path) -> Path:
    """The general samples the forgetting check scores: ``general_eval.jsonl`` when it holds samples, else the
    replay set ``general.jsonl`` (what the check read before the held-out general samples existed)."""
    held = data_dir / f"{GENERAL_EVAL}.jsonl"
    return held if held.is_file() and held.stat().st_size else data_dir / "general.jsonl"


def prepare_data(cfg: DataSettings, folder: Path, progress: bool = True) -> dict[str, Path]:
    """Generate (or copy) candidates, held-out, general replay and general-evaluation samples into ``folder`` as
    JSONL; return the paths.

    The general-evaluation samples (the forgetting check) come from the general suite's evaluation stream (the
    held-out split, or the validation stream under ``eval_split: validation``), so the check scores general samples
    no phase trained on. With a ``data.general`` file and no ``data.general_eval`` file there is nothing to draw
    them from: the file is left empty and the check reads the replay file itself (recall, not forgetting; logged).
    """
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / f"{name}.jsonl" for name in DATA_FILES}
    for name in DATA_FILES:
        src = getattr(cfg, name)
        if src:
            samples, errors = load_samples(src, on_error="collect")
            for e in errors:
                logger.warning("data.%s: %s (row skipped)", name, e)
            if not samples:
                raise DataError(f"data.{name}: {src} holds no valid sample")
        elif name == GENERAL_EVAL and cfg.general:
            logger.warning("data.general is a file and data.general_eval is not set: the forgetting check scores "
                           "the replay samples D_gen trains on (recall); set data.general_eval to general samples "
                           "held out from it to measure forgetting")
            samples = []
        elif cfg.generator:
            general = name in ("general", GENERAL_EVAL)
            suite = cfg.general_suite if general else cfg.generator
            gen_name = cfg.generator if ":" in cfg.generator else suite
            n = {"train": cfg.n_train, "heldout": cfg.n_heldout, "general": cfg.n_general,
                 GENERAL_EVAL: cfg.n_general}[name]
            evaluated = name in ("heldout", GENERAL_EVAL)
            validation = evaluated and cfg.eval_split == "validation"  # tuning: a third seed stream
            seed = cfg.seed + (7 if general else 0) + (VALIDATION_SEED_OFFSET if validation else 0)
            samples = generate(gen_name, suite=suite, n=n, seed=seed,
                               out_dir=folder / name, capabilities=[] if general else cfg.capabilities,
                               templates=[] if general else cfg.templates, image_size=cfg.image_size,
                               split="heldout" if evaluated and not validation else "train",
                               progress=progress, difficulty=None if general else cfg.difficulty)
        else:
            samples = []
        write_samples(samples, paths[name])
        logger.info("data: %d %s samples", len(samples), name)
    return paths


def pretrain_data(cfg: DataSettings, n: int, task_share: float, folder: Path,
                  templates: Sequence[str] | None = None) -> list[EmbodiedSample]:
    """Pre-training samples: ``n`` in all, ``task_share`` of them from the task generator (its own disjoint seed
    stream, so the base is partly competent on the task family, like a pretrained VLM), the rest general-suite.
    The task samples come from ``templates`` when given, else from ``cfg.templates``.
    """
    n_task = round(n * task_share) if cfg.generator else 0
    general = cfg.generator if cfg.generator and ":" in cfg.generator else cfg.general_suite
    out = generate(general, suite=cfg.general_suite, n=n - n_task, seed=cfg.seed + 13, out_dir=folder / "pretrain",
                   image_size=cfg.image_size)
    if n_task and cfg.generator:
        out += generate(cfg.generator, suite=cfg.generator, n=n_task, seed=cfg.seed + PRETRAIN_SEED_OFFSET,
                        out_dir=folder / "pretrain_tasks", templates=list(templates or []) or cfg.templates,
                        image_size=cfg.image_size, difficulty=cfg.difficulty)
    return out


def read_data(folder: Path) -> dict[str, list[EmbodiedSample]]:
    """Read what :func:`prepare_data` wrote."""
    out = {}
    for name in DATA_FILES:
        p = folder / f"{name}.jsonl"
        out[name] = load_samples(p)[0] if p.is_file() and p.stat().st_size else []
    return out


def synthesize(cfg: DataSettings, capabilities: Sequence[str], n: int, loop: int,
               folder: Path) -> list[EmbodiedSample]:
    """Fresh samples of the weak capabilities from the generator (new seeds, same generator, oracle answers).

    Returns an empty list when the data come from files only (no generator to synthesise with).
    """
    if not cfg.generator or not capabilities or n == 0:
        return []
    return generate(cfg.generator, suite=cfg.generator, n=n, seed=cfg.seed + SYNTH_SEED_OFFSET + 10_000 * loop,
                    out_dir=folder, capabilities=capabilities, templates=cfg.templates, image_size=cfg.image_size,
                    difficulty=cfg.difficulty)
