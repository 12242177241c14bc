"""``dppo data``: generate procedural embodied QA, list suites, templates and env ids.

    dppo data generate --suite tabletop-qa --n 500 --out data/qa --seed 0
    dppo data generate --suite tabletop-qa --n 200 --out data/qa-heldout --seed 0 --split heldout
    dppo data generate --suite tabletop-qa --n 100 --out data/temporal --capabilities temporal_sequential \\
        --difficulty clip_s=6 --difficulty n_objects=[3,6] --videos
    dppo data generate --suite replay --n 200 --out data/replay
    dppo data list
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from dppo_embodied.errors import DppoError
from dppo_embodied.logs import setup_logging


def make_parser() -> argparse.ArgumentParser:
    """Argument parser of ``dppo data``."""
    p = argparse.ArgumentParser(prog="dppo data", description="procedural embodied QA from the simulated world")
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate", help="generate a QA dataset (JSONL + PNG/MP4)")
    g.add_argument("--suite", default="tabletop-qa", help="tabletop-qa (9 capabilities) or replay")
    g.add_argument("--n", type=int, required=True, help="number of samples")
    g.add_argument("--out", type=Path, required=True, help="output folder (samples.jsonl + media/)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--split", default="train", choices=["train", "heldout"],
                   help="heldout draws from a disjoint seed stream")
    g.add_argument("--capabilities", nargs="+", default=None, help="capability slugs (default: all)")
    g.add_argument("--templates", nargs="+", default=None, help="template names (default: all)")
    g.add_argument("--difficulty", action="append", default=[], metavar="KEY=VALUE",
                   help="difficulty knob, repeatable: n_objects=[2,6] distractors=1 clip_s=4 fps=2 stacks=1")
    g.add_argument("--image-size", type=int, default=96)
    g.add_argument("--videos", action="store_true", help="also write an MP4 per clip")
    g.add_argument("--overwrite", action="store_true",
                   help="replace the dataset already in --out (its samples.jsonl and media/ are removed first)")
    g.add_argument("--no-progress", action="store_true")
    g.add_argument("-v", "--verbose", action="count", default=0)
    sub.add_parser("list", help="list QA suites, their templates and the env ids")
    return p


def _difficulty(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise DppoError(f"--difficulty expects KEY=VALUE, got {item!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


#: what ``dppo data generate`` writes into its folder
GENERATED = ("samples.jsonl", "media")


def _clear_out(out: Path, overwrite: bool) -> None:
    """Refuse an ``--out`` that holds files (unless ``overwrite``: then remove what a generate run wrote there).

    Raises:
        DppoError: the folder is not empty (without ``--overwrite``), or holds files no generate run writes.
    """
    if not out.exists():
        return
    if not out.is_dir():
        raise DppoError(f"--out {out} is a file; pass a folder")
    present = sorted(p.name for p in out.iterdir())
    if not present:
        return
    if not overwrite:
        raise DppoError(f"--out {out} already holds {', '.join(present[:5])}; choose another folder or pass "
                        "--overwrite (removes its samples.jsonl and media/ first)")
    foreign = [n for n in present if n not in GENERATED]
    if foreign:
        raise DppoError(f"--out {out} holds files dppo data generate did not write ({', '.join(foreign[:5])}); "
                        "--overwrite replaces only a generated dataset: choose another folder")
    import shutil

    for name in GENERATED:
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def main(argv: list[str] | None = None) -> int:
    """Run ``dppo data``; returns the exit code."""
    args = make_parser().parse_args(argv)
    if args.cmd == "list":
        from envs.catalogue import envs, qa_suites
        from envs.qa import templates_for

        for name, help_ in qa_suites():
            print(f"{name}: {help_}")
            for cap, names in templates_for(name).items():
                print(f"  {cap}: {', '.join(names)}")
        print("envs:")
        for name, help_ in envs():
            print(f"  {name}: {help_}")
        return 0
    setup_logging(args.verbose)
    try:
        _clear_out(args.out, args.overwrite)
        from envs.qa import generate

        samples = generate(args.suite, n=args.n, seed=args.seed, capabilities=args.capabilities,
                           difficulty=_difficulty(args.difficulty), out_dir=args.out, image_size=args.image_size,
                           progress=not args.no_progress, split=args.split, videos=args.videos,
                           templates=args.templates)
    except DppoError as e:
        print(f"dppo data: error: {e}", file=sys.stderr)
        return 2
    counts: dict[str, int] = {}
    for s in samples:
        counts[s.capabilities[0]] = counts.get(s.capabilities[0], 0) + 1
    print(json.dumps({"samples": len(samples), "out": str(args.out / "samples.jsonl"), "by_capability": counts}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
