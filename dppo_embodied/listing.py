"""``dppo list``: what exists — capabilities, answer types, commands and registered catalogues.

Catalogues of the other packages come from the ``dppo`` dispatch table (:data:`dppo_embodied.cli.CATALOGUES`),
loaded lazily, so listing them does not import a package that is not installed (and the core never imports the
packages above it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from dppo_embodied import cli
from dppo_embodied.cli import COMMANDS
from dppo_embodied.errors import DppoError
from dppo_embodied.registry import load_entry_point
from dppo_embodied.taxonomy import CAPABILITIES, GROUPS
from dppo_embodied.types import AnswerType


def _capabilities() -> list[tuple[str, str]]:
    return [(c.slug, f"{c.name} [{GROUPS[c.group]}]") for c in CAPABILITIES]


def _answer_types() -> list[tuple[str, str]]:
    return [(t.value, "") for t in AnswerType]


def _commands() -> list[tuple[str, str]]:
    return [(n, h) for n, (_, h) in COMMANDS.items()]


#: catalogue name -> callable or "module:function" (the dispatch table's) returning [(name, help), ...].
CATALOGUES: dict[str, Callable[[], list[tuple[str, str]]] | str] = {
    "capabilities": _capabilities,
    "answer-types": _answer_types,
    "commands": _commands,
    **cli.CATALOGUES,
}


def make_parser() -> argparse.ArgumentParser:
    """Argument parser of ``dppo list``."""
    p = argparse.ArgumentParser(prog="dppo list", description=__doc__.splitlines()[0])
    p.add_argument("what", nargs="?", choices=sorted(CATALOGUES), help="one catalogue (default: all)")
    return p


def entries(what: str) -> list[tuple[str, str]]:
    """The ``(name, help)`` rows of one catalogue."""
    src = CATALOGUES[what]
    fn = load_entry_point(src) if isinstance(src, str) else src
    return list(fn())


def main(argv: list[str] | None = None) -> int:
    """Print one catalogue or all of them."""
    args = make_parser().parse_args(argv)
    for what in [args.what] if args.what else list(CATALOGUES):
        try:
            rows = entries(what)
        except (ImportError, DppoError) as e:
            print(f"{what}: unavailable ({e})")
            continue
        print(f"{what}:")
        width = max((len(n) for n, _ in rows), default=0)
        for name, help_ in rows:
            print(f"  {name:<{width}}  {help_}".rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
