"""``dppo demo`` (``make demo``): the main job — the whole DPPO metaloop on a 2-core CPU in about 13 minutes.

Steps: build a ~1.2 M-parameter Qwen2.5-VL offline; generate tabletop QA (held-out split from a disjoint seed
stream), the general replay suite and a closed-loop pick task; pre-train briefly on the replay suite (that is the
base, like a user's pretrained VLM); evaluate the base; run 3 metaloops; evaluate; print the before/after table
per capability; write ``outputs/demo/curve.png`` and ``outputs/demo/summary.json``
(``{"base": {capability: success, ..., "overall": x}, "final": {...}}``, success 0-100). The trained checkpoint is
``outputs/demo/model`` (a link to the run's last checkpoint, ``ckpt/k3-sft``): evaluate, serve and bridge it.

    dppo demo [--output-dir outputs/demo] [--resume] [key=value overrides of training/recipes/demo.yaml]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "demo.yaml"


def make_parser() -> argparse.ArgumentParser:
    """Argument parser of ``dppo demo``."""
    p = argparse.ArgumentParser(prog="dppo demo", description=__doc__.splitlines()[0])
    p.add_argument("--output-dir", default="outputs/demo", help="run folder (default outputs/demo; replaced)")
    p.add_argument("--config", default=None, help="recipe (default: training/recipes/demo.yaml; with --resume, "
                   "the run's own config.yaml)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted demo instead of starting over")
    p.add_argument("--override-config", action="store_true",
                   help="with --resume: apply a recipe or overrides that differ from the run's config.yaml")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("overrides", nargs="*", help="key=value overrides of the recipe")
    return p


def link_model(out: Path, checkpoint: str) -> Path:
    """``<out>/model``: a relative link to the run's last checkpoint (a copy where links are not allowed)."""
    link = out / "model"
    if link.is_symlink() or link.is_file():
        link.unlink()
    elif link.is_dir():
        shutil.rmtree(link)
    try:
        link.symlink_to(checkpoint, target_is_directory=True)
    except OSError:
        shutil.copytree(out / checkpoint, link)
    return link


def main(argv: list[str] | None = None) -> int:
    """Run the demo; print the table; return 0 (1 on a DPPO error)."""
    args = make_parser().parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    for k, v in {"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "TRANSFORMERS_OFFLINE": "1",
                 "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "TRL_EXPERIMENTAL_SILENCE": "1",
                 "MUJOCO_GL": "egl", "PYOPENGL_PLATFORM": "egl", "WANDB_MODE": "disabled"}.items():
        os.environ.setdefault(k, v)
    from dppo_embodied.errors import DppoError
    from dppo_embodied.logs import setup_logging

    setup_logging()
    t0 = time.time()
    out = Path(args.output_dir)
    try:
        from training.metaloop import run_metaloop
        from training.runs.report import before_after_table, read_evals, template_table
        from training.scripts.run import resolve_config

        recipe = args.config if args.config is not None or args.resume else str(RECIPE)
        cfg = resolve_config(recipe, args.overrides, str(out), args.resume, args.override_config)
        if out.exists() and not args.resume:
            print(f"dppo demo: replacing the previous demo run in {out}")
            shutil.rmtree(out)
        summary = run_metaloop(cfg, resume=args.resume, progress=not args.no_progress)
        model = link_model(out, summary["checkpoint"])
        evals = {e["tag"]: e for e in read_evals(out)}
        base = evals["base"]["heldout"]
        final = evals[summary["curve"][-1]["step"]]["heldout"]
    except DppoError as e:
        print(f"dppo demo: {e}", file=sys.stderr)
        return 1
    minutes = (time.time() - t0) / 60
    print()
    print(f"DPPO demo: held-out success per capability ({summary['n_heldout']} held-out samples, "
          f"{summary['loops_done']} metaloops, {minutes:.1f} min)")
    print(before_after_table(base, final))
    if summary.get("per_template"):  # does the model read the image, or give each template one answer?
        print("\nheld-out QA per question template")
        print(template_table(summary["per_template"]))
    gr = summary["general_replay"]
    if gr["base"] is not None:
        print(f"general replay (forgetting check): base {gr['base']:.1f} -> final {gr['final']:.1f}")
    for env, after in (summary.get("closed_loop") or {}).get("final", {}).items():
        before = (summary["closed_loop"]["base"] or {}).get(env, float("nan"))
        print(f"closed-loop success ({env}, held-out episodes): base {before:.1f} -> final {after:.1f}")
    print(f"\ntrained checkpoint: {model} (dppo eval run --model {model} ...; dppo serve --model {model})")
    print(f"wrote {out / 'summary.json'}, {out / 'summary.md'}, {out / 'curve.png'}; "
          f"held-out success per capability in TensorBoard: tensorboard --logdir {out / 'tensorboard'} "
          f"(every phase's curves: --logdir {out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
