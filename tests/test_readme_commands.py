"""Every command in README.md and docs/*.md works as written on a fresh clone.

The commands are extracted from the ``bash`` code blocks (continuation lines joined, comments dropped) and each one
must be classified in :data:`HOW` (a new command that is not fails :func:`test_every_command_is_classified`):

* ``run``: run exactly as written in a scratch folder laid out like a fresh clone (fast lane; these write nothing,
  so two run at a time, and a command written in several documents runs once);
* ``slow``: the same in the slow lane (data generation, training, evaluation, serving, the bridge); ``dppo serve
  ... &`` starts in the background until its address is printed; the ports 8000/8001 of a document are replaced
  by free ones (another process may hold them);
* ``dry-run``: a long job (hours of training) run with ``--dry-run`` appended;
* ``parse``: a GPU, robot or dataset command, whose flags are parsed by the command's own parser (nothing runs)
  and whose repository files (recipes, accelerate configs) must exist;
* ``make``: ``make -n`` (what the target would do) in the repository;
* ``help``: the program answers ``--help`` (tensorboard, hf);
* ``env``: setting up another environment (documented, not run here).

``make demo`` takes 8 minutes; the slow lane stands in ``dppo demo --config training/recipes/smoke.yaml`` for it
(``make demo`` is ``make setup`` + ``dppo demo``), which writes ``outputs/demo`` with the same layout, so the README's
train -> eval -> serve -> bridge -> record flow after it runs as written on the demo's checkpoint.
"""

from __future__ import annotations

import importlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.serve_process import wait_for_banner

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent

#: (regex on the normalized command, mode); the first match wins.
HOW: list[tuple[str, str]] = [
    (r"^make setup( |$)", "make"), (r"^make (test|demo)$", "make"),
    (r"^source \.venv/bin/activate$", "env"),
    (r"^dppo (--help|list|doctor)$", "run"),
    (r"^dppo doctor --tasks", "parse"),  # needs the benchmark datasets
    (r"^dppo data list$", "run"),
    (r"^dppo data generate ", "slow"),
    (r"^dppo train build-tiny ", "slow"),
    (r"^dppo train --config training/recipes/smoke\.yaml ", "slow"),
    (r"^dppo train --output-dir outputs/smoke --resume$", "slow"),
    (r"^dppo train (--config \S+ )?--output-dir outputs/run1 --resume$", "parse"),  # a run that took 8 min
    (r"^dppo train --config training/recipes/demo\.yaml --output-dir outputs/run1$", "dry-run"),
    (r"^dppo train --config \S+ --dry-run$", "run"),
    (r"^dppo train compare .*--dry-run$", "run"),
    (r"^dppo train compare ", "dry-run"),
    (r"^accelerate launch ", "parse"),  # multi-GPU
    (r"^dppo eval tasks$", "run"),
    (r"^dppo eval (run|check|score) .*(/data/bench|--data-root data|Qwen/|ckpt/ )", "parse"),  # datasets, GPU
    (r"^dppo eval report runs/(7b|ckpt) ", "parse"),  # reports of those runs
    (r"^dppo eval (run|report) ", "slow"),
    (r"^dppo serve .* &$", "slow"),  # the README flow: in the background
    (r"^dppo serve ", "parse"),  # the reference lines (the same commands without &) and GPU/network variants
    (r"^dppo bridge --robot so101 ", "parse"),  # a real arm
    (r"^dppo bridge --robot sim ", "slow"),
    (r"^tensorboard ", "help"),
    (r"^hf download ", "help"),
    (r"^(python3 -m venv|/work/lerobot-venv/|apt-get |DPPO_LEROBOT_PYTHON=)", "env"),  # LeRobot's own venv
]


@dataclass(frozen=True)
class Command:
    """One command of a document."""

    doc: str
    line: int
    text: str

    @property
    def tokens(self) -> list[str]:
        return shlex.split(self.text)

    @property
    def mode(self) -> str | None:
        return next((mode for rx, mode in HOW if re.search(rx, self.text)), None)

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}: {self.text}"


def commands(path: Path) -> list[Command]:
    """The commands of ``path``'s bash code blocks (a command's line is where it starts)."""
    out: list[Command] = []
    block, pending, start = False, "", 0
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith("```"):
            block = not block and line[3:].strip() in ("bash", "sh", "shell", "console")
            continue
        if not block:
            continue
        if not pending:
            start = lineno
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        tokens = shlex.split(pending + line, comments=True)
        pending = ""
        if tokens:
            out.append(Command(path.name, start, shlex.join(tokens).replace("'&'", "&")))
    return out


ALL = [c for p in DOCS for c in commands(p)]


def test_every_command_is_classified() -> None:
    assert len(ALL) > 40
    missing = [str(c) for c in ALL if c.mode is None]
    assert not missing, "commands in the docs that tests/test_readme_commands.py does not check:\n" + "\n".join(
        missing)


def test_no_doc_uses_the_removed_huggingface_cli() -> None:
    assert not [str(c) for c in ALL if c.tokens[0] == "huggingface-cli"], "huggingface_hub ships `hf download`"


def test_readme_shows_the_first_hour() -> None:
    readme = (ROOT / "README.md").read_text()
    for needed in ("source .venv/bin/activate", ".venv/bin/dppo", "dppo doctor", "make demo", "outputs/demo/model",
                   "dppo serve --model outputs/demo/model", "dppo bridge", "--record", "dppo serve --backend expert"):
        assert needed in readme, needed
    flow = [c.text for c in commands(ROOT / "README.md")]
    order = [next(i for i, t in enumerate(flow) if t.startswith(p)) for p in
             ("make demo", "dppo eval run --model outputs/demo/model", "dppo serve --model outputs/demo/model",
              "dppo bridge --robot sim")]
    assert order == sorted(order), "train -> eval -> serve -> bridge"


# ----------------------------------------------------------------------------------------------- running
def _env() -> dict[str, str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "DPPO_LOG_LEVEL": "WARNING",
           "OMP_NUM_THREADS": "2"}
    env.pop("DPPO_API_KEY", None)
    return env


def _argv(tokens: list[str]) -> list[str]:
    exe = BIN / tokens[0]
    if tokens[0] == "dppo" and not exe.exists():
        return [sys.executable, "-m", "dppo_embodied.cli", *tokens[1:]]
    return [str(exe) if exe.exists() else tokens[0], *tokens[1:]]


def _clone(tmp: Path) -> Path:
    """A scratch folder laid out like a fresh clone for what the commands read (the recipes)."""
    work = tmp / "clone"
    work.mkdir()
    (work / "training").symlink_to(ROOT / "training", target_is_directory=True)
    return work


def _run(cmd: Command, cwd: Path, timeout: float, tokens: list[str] | None = None) -> subprocess.CompletedProcess:
    r = subprocess.run(_argv(tokens or cmd.tokens), cwd=cwd, env=_env(), capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"{cmd}\nexit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def _parse(cmd: Command) -> None:
    """Parse the flags with the command's own parser; repository files it names must exist."""
    tokens = cmd.tokens
    for t in tokens:
        if t.startswith("training/recipes/"):
            assert (ROOT / t).exists(), f"{cmd}: {t} does not exist"
    if tokens[0] == "accelerate":
        assert (BIN / "accelerate").exists() or shutil.which("accelerate"), "accelerate is not installed"
        tokens = ["dppo", "train", *tokens[tokens.index("training.cli") + 1:]]
    if tokens[:2] == ["dppo", "train"]:
        from training.cli import SUBCOMMANDS

        rest = tokens[2:]
        module = SUBCOMMANDS[rest[0]][0] if rest and rest[0] in SUBCOMMANDS else SUBCOMMANDS["run"][0]
        args = rest[1:] if rest and rest[0] in SUBCOMMANDS else rest
    else:
        from dppo_embodied.cli import COMMANDS

        module, args = COMMANDS[tokens[1]][0], tokens[2:]
    if "--" in args:
        args = args[: args.index("--")]
    try:
        importlib.import_module(module).make_parser().parse_args(args)
    except SystemExit as e:
        pytest.fail(f"{cmd}: its flags do not parse (exit {e.code})")


def _check_fast(cmd: Command, work: Path) -> None:
    """Check one fast-lane command by its mode (nothing for the slow lane and for other environments)."""
    mode = cmd.mode
    if mode == "run":
        _run(cmd, work, 300)
    elif mode == "dry-run":
        _run(cmd, work, 300, [*cmd.tokens, "--dry-run"])
    elif mode == "parse":
        _parse(cmd)
    elif mode == "make":
        r = subprocess.run(["make", "-n", *cmd.tokens[1:]], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"{cmd}: make -n failed\n{r.stderr}"
    elif mode == "help":
        _run(cmd, work, 120, [cmd.tokens[0], *(["download"] if cmd.tokens[0] == "hf" else []), "--help"])
    elif mode == "env" and cmd.tokens[0] == "source":
        assert (ROOT / cmd.tokens[1]).is_file(), cmd


def test_fast_commands_work_as_written(tmp_path: Path) -> None:
    work = _clone(tmp_path)
    distinct = list({c.text: c for c in reversed(ALL)}.values())[::-1]  # written in several documents: checked once
    for cmd in distinct:
        if cmd.mode == "parse":
            _check_fast(cmd, work)
    # the others are processes that write nothing (--help, dry runs, make -n): two at a time, failures re-raised
    with ThreadPoolExecutor(max_workers=2) as pool:
        for f in [pool.submit(_check_fast, c, work) for c in distinct if c.mode != "parse"]:
            f.result()


def test_a_broken_command_in_a_doc_fails(tmp_path: Path) -> None:
    doc = tmp_path / "broken.md"
    doc.write_text("```bash\ndppo train --config training/recipes/no-such.yaml --dry-run   # runs\n"
                   "dppo serve --model ckpt \\\n    --no-such-flag   # parsed\n```\n")
    ran, parsed = commands(doc)
    assert (ran.mode, parsed.mode, parsed.line) == ("run", "parse", 3)
    with pytest.raises(AssertionError, match="exit 1"):
        _check_fast(ran, _clone(tmp_path))
    with pytest.raises(pytest.fail.Exception, match="do not parse"):
        _check_fast(parsed, tmp_path)


# --------------------------------------------------------------------------------------------- slow lane
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Background:
    """``dppo serve ... &``: started, waited for until it prints its address, stopped at the end."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, cmd: Command, tokens: list[str], cwd: Path) -> None:
        proc = subprocess.Popen(_argv(tokens), cwd=cwd, env=_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        self.procs.append(proc)
        banner, seen = wait_for_banner(proc, 180)
        if banner is None:
            pytest.fail(f"{cmd}: the server did not start\n{''.join(seen)}")

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(5)


def _run_slow(doc: Path, tmp_path: Path, before: list[list[str]] = ()) -> Path:  # type: ignore[assignment]
    work = _clone(tmp_path)
    ports = {"8000": str(_free_port()), "8001": str(_free_port())}
    servers = Background()
    try:
        for argv in before:
            _run(Command(doc.name, 0, shlex.join(argv)), work, 1800, argv)
        for cmd in commands(doc):
            if cmd.mode != "slow":
                continue
            tokens = [re.sub(r"\b(8000|8001)\b", lambda m: ports[m.group(1)], t) for t in cmd.tokens]
            if tokens[-1] == "&":
                servers.start(cmd, tokens[:-1], work)
            else:
                _run(cmd, work, 1200, tokens)
    finally:
        servers.stop()
    return work


@pytest.mark.slow
@pytest.mark.mujoco
@pytest.mark.network
def test_readme_flow_runs_as_written(tmp_path: Path) -> None:
    # `make demo` = make setup + dppo demo (8 min): the smoke recipe gives outputs/demo the same layout in ~1 min
    work = _run_slow(ROOT / "README.md", tmp_path,
                     before=[["dppo", "demo", "--config", "training/recipes/smoke.yaml", "--no-progress"]])
    assert (work / "outputs" / "demo" / "model" / "config.json").is_file()
    assert "tabletop_closed_loop/videos/pick/seed1000.mp4" in (work / "runs" / "demo-eval" / "report.html").read_text()
    assert len(list((work / "runs" / "demo-eval" / "tabletop_closed_loop" / "videos" / "pick").glob("*.mp4"))) == 2
    import json

    expert = json.loads((work / "runs" / "deploy-expert" / "meta" / "info.json").read_text())
    assert expert["total_episodes"] == 1
    assert (work / "runs" / "deploy" / "meta" / "info.json").is_file()
    assert (work / "outputs" / "smoke" / "tensorboard").is_dir()


@pytest.mark.slow
@pytest.mark.mujoco
@pytest.mark.network
@pytest.mark.parametrize("doc", [p for p in DOCS if p.name != "README.md" and any(
    c.mode == "slow" for c in commands(p))], ids=lambda p: p.name)
def test_doc_commands_run_as_written(doc: Path, tmp_path: Path) -> None:
    _run_slow(doc, tmp_path)
