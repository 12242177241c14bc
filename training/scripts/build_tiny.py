"""``dppo train build-tiny``: build an offline tiny Qwen2.5-VL with random weights (:mod:`inference.tiny_vlm`).

    dppo train build-tiny --size tiny --out checkpoints/tiny [--seed 0] [--corpus texts.txt] [--max-pixels 9216]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from inference.tiny_vlm import SIZES, build_tiny_vlm


def make_parser() -> argparse.ArgumentParser:
    """Argument parser of ``dppo train build-tiny``."""
    p = argparse.ArgumentParser(prog="dppo train build-tiny", description="Build an offline tiny Qwen2.5-VL.")
    p.add_argument("--size", choices=sorted(SIZES), default="tiny", help="model size (default: tiny, < 1M params)")
    p.add_argument("--out", required=True, help="output checkpoint folder")
    p.add_argument("--seed", type=int, default=0, help="weight-initialisation seed")
    p.add_argument("--corpus", action="append", default=[],
                   help="extra text/JSONL file(s) whose lines train the tokenizer (repeatable)")
    p.add_argument("--max-pixels", type=int, default=96 * 96, help="max pixels per image (default 96*96)")
    return p


def main(argv: list[str] | None = None) -> int:
    """``dppo train build-tiny``."""
    from dppo_embodied.logs import setup_logging

    setup_logging()
    args = make_parser().parse_args(argv)
    corpus: list[str] = []
    for path in args.corpus:
        p = Path(path)
        if not p.is_file():
            print(f"dppo train build-tiny: corpus file {p} does not exist", file=sys.stderr)
            return 2
        corpus += p.read_text(encoding="utf-8").splitlines()
    out = build_tiny_vlm(args.out, size=args.size, seed=args.seed, corpus=corpus, max_pixels=args.max_pixels)
    print(f"saved {args.size} Qwen2.5-VL to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
