"""``dppo train [run] --config RECIPE [--output-dir DIR] [--resume] [--dry-run] [key=value ...]``: the metaloop.

``--resume`` continues the run in the output folder with the run's own ``config.yaml`` (``--config`` may then be
left out: ``dppo train --output-dir DIR --resume``). A recipe or overrides that differ from it are refused with the
differences, or applied with ``--override-config`` (the previous file is kept as ``config.prev-<n>.yaml``).

Multi-process (DDP / FSDP2 / DeepSpeed) runs go through accelerate::

    accelerate launch --config_file training/recipes/accelerate/fsdp2.yaml -m training.cli \
        --config training/recipes/qwen25vl_7b.yaml
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from dppo_embodied.errors import DppoError

logger = logging.getLogger(__name__)


def make_parser(prog: str = "dppo train run") -> argparse.ArgumentParser:
    """Argument parser of the metaloop command."""
    p = argparse.ArgumentParser(prog=prog, description="Run (or resume) the DPPO metaloop from a recipe.")
    p.add_argument("--config", help="recipe YAML (training/recipes/*.yaml); with --resume, default: the run's own "
                   "config.yaml")
    p.add_argument("--output-dir", default=None, help="run folder (overrides the recipe's output_dir)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in the output folder with its own config.yaml")
    p.add_argument("--override-config", action="store_true",
                   help="with --resume: apply a recipe or overrides that differ from the run's config.yaml "
                        "(otherwise refused with the differences)")
    p.add_argument("--dry-run", action="store_true",
                   help="validate the whole configuration and build everything up to loading the weights")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. grpo.learning_rate=5e-5 loops=2")
    return p


def resolve_config(recipe: str | None, overrides: list[str], output_dir: str | None, resume: bool,
                   override_config: bool = False) -> Any:
    """The run's configuration: the recipe with overrides for a new run; the run's own config.yaml on ``--resume``.

    Raises:
        ConfigError: no recipe for a new run; ``--resume`` without a run to resume; a recipe or overrides that differ
            from the run's config.yaml without ``override_config`` (the message lists the differences).
    """
    from dppo_embodied.config import to_dict
    from dppo_embodied.errors import ConfigError
    from training.metaloop_config import load_metaloop_config
    from training.runs.run_config import CONFIG_FILE, config_diff, describe_diff, replace_config

    if not resume:
        if recipe is None:
            raise ConfigError("--config RECIPE is required (e.g. training/recipes/smoke.yaml); only --resume may "
                              "leave it out")
        return load_metaloop_config(recipe, overrides, output_dir)
    if output_dir is None:
        if recipe is None:
            raise ConfigError("--resume needs the run folder: --output-dir DIR (or the recipe that names it)")
        output_dir = load_metaloop_config(recipe, overrides).output_dir
    saved = Path(output_dir) / CONFIG_FILE
    if not saved.is_file():
        if (Path(output_dir) / "state.json").is_file() and recipe is not None:  # a run from before config.yaml
            logger.warning("%s has no %s: resuming with %s", output_dir, CONFIG_FILE, recipe)
            return load_metaloop_config(recipe, overrides, output_dir)
        raise ConfigError(f"--resume: {output_dir} holds no run to resume (no {CONFIG_FILE}); start it without "
                          "--resume")
    own = load_metaloop_config(saved, [], output_dir)
    if recipe is None and not overrides:
        return own
    asked = load_metaloop_config(recipe or saved, overrides, output_dir)
    diff = config_diff(to_dict(own), to_dict(asked))
    if not diff:
        return own
    if not override_config:
        raise ConfigError(
            f"--resume continues {output_dir} with its own {CONFIG_FILE}; the recipe/overrides given differ from "
            f"it:\n{describe_diff(diff)}\nLeave out --config and the overrides to continue as the run started "
            "(dppo train --output-dir DIR --resume), or pass --override-config to apply these changes")
    logger.warning("--override-config: the resumed run applies %d change(s) to its config.yaml:\n%s", len(diff),
                   describe_diff(diff))
    replace_config(Path(output_dir), to_dict(asked))
    return asked


def main(argv: list[str] | None = None) -> int:
    """Run the metaloop; return 0 on success, 1 on a DPPO error (printed), 2 on usage errors."""
    from dppo_embodied.io import rank_world_from_env
    from dppo_embodied.logs import setup_logging

    args = make_parser().parse_args(argv)
    setup_logging(args.verbose)
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    try:
        if rank_world_from_env()[0] != 0:  # multi-process: only rank 0 reports progress
            logging.getLogger().setLevel(logging.WARNING)
        cfg = resolve_config(args.config, args.overrides, args.output_dir, args.resume, args.override_config)
        if not cfg.model.build_tiny:
            from dppo_embodied.model_ref import check_model_ref

            check_model_ref(cfg.model.path, flag="model.path")
        if args.dry_run:
            from training.scripts.dry_run import dry_run

            report = dry_run(cfg)
            sys.stdout.write(json.dumps(report, indent=2) + "\n")
            return 0
        from training.metaloop import run_metaloop
        from training.scripts.dry_run import check_output_dir

        check_output_dir(cfg.output_dir)  # fail now, not after the data and the model are built
        summary = run_metaloop(cfg, resume=args.resume, progress=not args.no_progress)
    except DppoError as e:
        sys.stderr.write(f"dppo train: {e}\n")
        return 1
    base, final = summary["base"]["overall"], summary["final"]["overall"]
    sys.stdout.write(f"held-out success (0-100): base {base:.1f} -> final {final:.1f} (n={summary['n_heldout']}); "
                     f"summary in {cfg.output_dir}/summary.json\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
