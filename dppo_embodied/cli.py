"""The ``dppo`` command: a table of subcommands dispatched lazily.

``dppo --help`` and ``dppo bridge`` import nothing heavy: each subcommand module is imported only when it runs,
and exposes ``make_parser()`` and ``main(argv) -> int`` (so it also runs as ``python -m <module>``).
A subcommand is listed here only once it works.

Like TRL's CLI, this module is the one place of the core that names the other packages' modules: the entry
module of each command (:data:`COMMANDS`) and of each catalogue that ``dppo list`` prints (:data:`CATALOGUES`),
all imported lazily, so the core never imports the packages above it.
"""

from __future__ import annotations

import importlib
import sys

from dppo_embodied import __version__

#: name -> (module, one-line help). Modules expose ``main(argv: list[str] | None) -> int``.
COMMANDS: dict[str, tuple[str, str]] = {
    "list": ("dppo_embodied.listing", "list capabilities, commands and the registered catalogues"),
    "train": ("training.cli", "train: the DPPO metaloop (--config RECIPE), compare (ablations), build-tiny"),
    "demo": ("training.scripts.demo", "the main job: the whole DPPO metaloop on a 2-core CPU in ~8 min (make demo)"),
    "eval": ("benchmarks.cli", "evaluate: run benchmarks, re-score responses, report and compare runs"),
    "data": ("envs.cli", "data: generate procedural embodied QA from the simulator (generate, list)"),
    "serve": ("inference.serving.cli", "serve a checkpoint behind an OpenAI-compatible API (transformers or vLLM)"),
    "bridge": ("robot_bridge.cli", "drive a robot (sim twin or LeRobot arm) with a served VLM, safely"),
    "doctor": ("dppo_embodied.doctor", "check this machine (EGL render, CUDA/vLLM, extras, disk, datasets) and say "
               "what to fix"),
}

#: ``dppo list`` catalogues of the other packages -> ``"module:function"`` returning ``[(name, help), ...]``.
CATALOGUES: dict[str, str] = {
    "envs": "envs.catalogue:envs",
    "qa-suites": "envs.catalogue:qa_suites",
    "tasks": "benchmarks.task:catalogue",
    "robots": "robot_bridge.robots:robot_names",
}


def usage() -> str:
    """The top-level help text."""
    width = max(len(n) for n in COMMANDS)
    lines = [
        "usage: dppo [--version] [--help] <command> [args...]",
        "",
        "DPPO for embodied VLMs: metaloop training, embodied benchmarks, simulated worlds, robot bridge.",
        "",
        "commands:",
    ]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run 'dppo <command> --help' for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``dppo`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if args[0] in ("-V", "--version"):
        print(f"dppo-embodied {__version__}")
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"dppo: unknown command {name!r}; valid commands: {', '.join(COMMANDS)}", file=sys.stderr)
        print(usage(), file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
