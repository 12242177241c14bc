"""``dppo train``: the DPPO metaloop, ablations and model building. Subcommands load lazily.

``dppo train --config RECIPE`` (no subcommand) runs the metaloop, like ``dppo train run --config RECIPE``.
"""

from __future__ import annotations

import importlib
import sys

#: subcommand -> (module, help). Each module exposes ``main(argv) -> int``.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "build-tiny": ("training.scripts.build_tiny", "build an offline tiny Qwen2.5-VL checkpoint (random weights)"),
    "run": ("training.scripts.run", "run or resume the DPPO metaloop (--config RECIPE [--resume] [--dry-run])"),
    "compare": ("training.scripts.compare",
                "ablations at equal compute: dppo vs grpo_only vs sft_only (table + plot)"),
}


def usage() -> str:
    """Help text of ``dppo train``."""
    width = max(len(n) for n in SUBCOMMANDS)
    rows = "\n".join(f"  {n:<{width}}  {h}" for n, (_, h) in SUBCOMMANDS.items())
    return (f"usage: dppo train <subcommand> [args...]\n       dppo train --config RECIPE [--resume] (= run)\n\n"
            f"subcommands:\n{rows}")


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``dppo train <subcommand>``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0
    if args[0].startswith("--"):  # `dppo train --config X ...`: the metaloop
        args = ["run", *args]
    if args[0] not in SUBCOMMANDS:
        print(f"dppo train: unknown subcommand {args[0]!r}; valid: {', '.join(SUBCOMMANDS)}", file=sys.stderr)
        return 2
    return int(importlib.import_module(SUBCOMMANDS[args[0]][0]).main(args[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
