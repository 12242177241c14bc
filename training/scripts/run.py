"""``dppo train [run] --config RECIPE [--output-dir DIR] [--resume] [--dry-run] [key=value ...]``: the metaloop.

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

from dppo_embodied.errors import DppoError

logger = logging.getLogger(__name__)


def make_parser(prog: str = "dppo train run") -> argparse.ArgumentParser:
    """Argument parser of the metaloop command."""
    p = argparse.ArgumentParser(prog=prog, description="Run (or resume) the DPPO metaloop from a recipe.")
    p.add_argument("--config", required=True, help="recipe YAML (training/recipes/*.yaml)")
    p.add_argument("--output-dir", default=None, help="run folder (overrides the recipe's output_dir)")
    p.add_argument("--resume", action="store_true", help="continue the run in the output folder")
    p.add_argument("--dry-run", action="store_true",
                   help="validate the whole configuration and build everything up to loading the weights")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. grpo.learning_rate=5e-5 loops=2")
    return p


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
        from training.metaloop_config import load_metaloop_config

        cfg = load_metaloop_config(args.config, args.overrides, args.output_dir)
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
    sys.stdout.write(f"held-out success: base {base:.3f} -> final {final:.3f} (n={summary['n_heldout']}); "
                     f"summary in {cfg.output_dir}/summary.json\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
