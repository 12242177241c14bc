"""``dppo doctor``: check this machine for dppo-embodied and say what to fix.

    dppo doctor                                   # python, venv/PATH, extras, EGL render, CUDA/vLLM, disk
    dppo doctor --tasks pelican --data-root /data/bench --data tabletop_qa=data/heldout
    dppo doctor --json                            # one JSON object (checks and their status)

Each check is ``ok``, ``warn`` (works, but something is missing or slow) or ``fail`` (a required check: the exit
status is then 1). Checks that import heavy libraries (MuJoCo, torch) run in a child process with a time limit, so
a broken GL driver or CUDA install is reported instead of crashing the doctor; the doctor itself imports nothing
outside the standard library and the core.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

#: A one-frame MuJoCo render through the GL backend of ``MUJOCO_GL`` (a red sphere in front of the camera).
RENDER_PROBE = """
import json, mujoco
xml = ("<mujoco><worldbody><light pos='0 0 1'/><camera name='c' pos='0 -0.5 0' xyaxes='1 0 0 0 0 1'/>"
       "<geom type='sphere' size='0.1' rgba='1 0 0 1'/></worldbody></mujoco>")
m = mujoco.MjModel.from_xml_string(xml)
d = mujoco.MjData(m)
mujoco.mj_forward(m, d)
r = mujoco.Renderer(m, 32, 32)
r.update_scene(d, camera='c')
px = r.render()
r.close()
print(json.dumps({"mujoco": mujoco.__version__, "red": int(px[16, 16, 0]), "green": int(px[16, 16, 1])}))
"""

#: torch's CUDA view of the machine.
CUDA_PROBE = """
import json, torch
ok = torch.cuda.is_available()
print(json.dumps({"torch": torch.__version__, "cuda": ok, "cuda_version": torch.version.cuda,
                  "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if ok else []}))
"""

#: import name -> (extra that installs it, what needs it)
EXTRAS: dict[str, tuple[str, str]] = {
    "mujoco": ("sim", "simulated envs and procedural QA (dppo data, dppo bridge --robot sim)"),
    "gymnasium": ("sim", "simulated envs"),
    "torch": ("train", "training, dppo eval --backend hf, dppo serve"),
    "transformers": ("train", "training, dppo eval --backend hf, dppo serve"),
    "trl": ("train", "training (GRPO, SFT)"),
    "tensorboard": ("train", "training curves in TensorBoard"),
    "fastapi": ("serve", "dppo serve"),
    "uvicorn": ("serve", "dppo serve"),
    "pandas": ("eval", "benchmarks stored as TSV/CSV, reports"),
    "matplotlib": ("eval", "radar and curve plots"),
    "pyarrow": ("eval", "parquet benchmarks, LeRobotDataset recording"),
    "av": ("video", "video benchmarks and video cameras"),
}


@dataclass
class Check:
    """One finding: ``status`` is ``ok``, ``warn`` or ``fail``; ``fix`` says what to do when it is not ok."""

    name: str
    status: str
    detail: str
    fix: str = ""


def _probe(code: str, timeout_s: float, env: dict[str, str] | None = None) -> tuple[dict[str, object] | None, str]:
    """Run ``code`` in a child Python; its last stdout line parsed as JSON, or ``None`` and the error text."""
    try:
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout_s,
                           env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired:
        return None, f"no answer within {timeout_s:g} s"
    lines = r.stdout.strip().splitlines()
    if r.returncode == 0 and lines:
        try:
            return json.loads(lines[-1]), ""
        except ValueError:
            pass
    err = (r.stderr.strip().splitlines() or [f"exit status {r.returncode}"])[-1]
    return None, err[:300]


def check_python() -> Check:
    """Python >= 3.10, in a virtual environment, ``dppo`` on PATH."""
    v = sys.version_info
    if v < (3, 10):
        return Check("python", "fail", f"Python {v.major}.{v.minor} at {sys.executable}",
                     "dppo-embodied needs Python >= 3.10; make setup PYTHON=python3.11")
    return Check("python", "ok", f"Python {v.major}.{v.minor}.{v.micro} at {sys.executable}")


def check_path() -> Check:
    """Whether the ``dppo`` command of this environment is the one the shell finds."""
    here = Path(sys.executable).parent / "dppo"
    found = shutil.which("dppo")
    in_venv = sys.prefix != sys.base_prefix
    where = f"virtual environment {sys.prefix}" if in_venv else f"system Python {sys.prefix}"
    if found and (not here.exists() or Path(found).resolve() == here.resolve()):
        return Check("venv/PATH", "ok", f"{where}; dppo on PATH is {found}")
    rel = os.path.relpath(here, Path.cwd()) if here.exists() else ""
    rel = rel if rel and not rel.startswith("..") else str(here)
    activate = os.path.relpath(Path(sys.prefix, "bin", "activate"), Path.cwd())
    activate = activate if not activate.startswith("..") else str(Path(sys.prefix, "bin", "activate"))
    fix = (f"activate the environment (source {activate}) or call {rel} directly"
           if here.exists() else "pip install -e . (the dppo command comes with the package)")
    detail = f"{where}; " + (f"dppo on PATH is another one ({found})" if found else "dppo is not on PATH")
    return Check("venv/PATH", "warn", detail, fix)


def check_extras() -> list[Check]:
    """Which optional extras are installed (missing ones are warnings: only their commands need them)."""
    missing: dict[str, list[str]] = {}
    for mod, (extra, _) in EXTRAS.items():
        if importlib.util.find_spec(mod) is None:
            missing.setdefault(extra, []).append(mod)
    if not missing:
        return [Check("extras", "ok", "sim, train, serve, eval and video extras installed")]
    out = []
    for extra, mods in missing.items():
        uses = "; ".join(dict.fromkeys(EXTRAS[m][1] for m in mods))
        out.append(Check(f"extra [{extra}]", "warn", f"not installed: {', '.join(mods)} (needed for {uses})",
                         f"pip install -e '.[{extra}]' (or make setup)"))
    return out


def check_render(timeout_s: float) -> Check:
    """A one-frame MuJoCo render through ``MUJOCO_GL`` (default egl here, as in the Makefile)."""
    if importlib.util.find_spec("mujoco") is None:
        return Check("render", "fail", "mujoco is not installed: no simulated envs, QA generation or sim robot",
                     "pip install -e '.[sim]' (or make setup)")
    gl = os.environ.get("MUJOCO_GL") or "egl"
    env = {"MUJOCO_GL": gl, "PYOPENGL_PLATFORM": os.environ.get("PYOPENGL_PLATFORM") or gl}
    res, err = _probe(RENDER_PROBE, timeout_s, env)
    if res is None:
        return Check("render", "fail", f"MuJoCo could not render one frame with MUJOCO_GL={gl}: {err}",
                     "install the EGL/GL libraries (Debian/Ubuntu: apt-get install libegl1 libgles2 libgl1), or "
                     "set MUJOCO_GL=osmesa (slow; needs libosmesa6); on a GPU machine check the NVIDIA driver's EGL")
    if int(res["red"]) <= int(res["green"]):  # type: ignore[call-overload]
        return Check("render", "fail", f"MuJoCo {res['mujoco']} rendered a frame with MUJOCO_GL={gl}, but not the "
                     "expected red sphere", "check the GL driver (MUJOCO_GL=egl, osmesa or glfw)")
    note = "" if os.environ.get("MUJOCO_GL") else " (MUJOCO_GL is unset: export MUJOCO_GL=egl as the Makefile does)"
    return Check("render", "ok", f"MuJoCo {res['mujoco']} rendered a frame with MUJOCO_GL={gl}{note}")


def check_cuda(timeout_s: float) -> list[Check]:
    """torch and CUDA (training speed), and vLLM (served separately)."""
    out = []
    if importlib.util.find_spec("torch") is None:
        out.append(Check("cuda", "warn", "torch is not installed (training, hf eval and serve need it)",
                         "make setup (CPU) or make setup TORCH_INDEX=https://download.pytorch.org/whl/cu128"))
    else:
        res, err = _probe(CUDA_PROBE, timeout_s)
        if res is None:
            out.append(Check("cuda", "fail", f"torch does not import: {err}", "reinstall torch (make setup)"))
        elif res["cuda"]:
            out.append(Check("cuda", "ok", f"torch {res['torch']}, CUDA {res['cuda_version']}: "
                             f"{', '.join(map(str, res['devices']))}"))  # type: ignore[call-overload]
        else:
            cpu = "CPU build" if not res["cuda_version"] else f"CUDA {res['cuda_version']} build, no GPU visible"
            out.append(Check("cuda", "warn", f"torch {res['torch']} ({cpu}): training and hf eval run on the CPU "
                             "(fine for the demo and the smoke recipe)",
                             "on a GPU machine: make setup TORCH_INDEX=https://download.pytorch.org/whl/cu128"))
    vllm = shutil.which("vllm") or (importlib.util.find_spec("vllm") is not None and "importable")
    out.append(Check("vllm", "ok" if vllm else "warn",
                     f"vllm found ({vllm})" if vllm else "vllm not found (only dppo serve --backend vllm needs it)",
                     "" if vllm else "install vLLM in its own environment (it pins its own torch) and put its "
                     "`vllm` on PATH; see README, GPU machines"))
    return out


def check_disk(path: Path, min_free_gb: float) -> Check:
    """Free space where runs are written."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free / 1e9
    if free < min_free_gb:
        return Check("disk", "fail", f"{free:.1f} GB free under {probe} (want >= {min_free_gb:g} GB)",
                     "free some space or write runs elsewhere (--out / --output-dir)")
    return Check("disk", "ok", f"{free:.1f} GB free under {probe}")


def check_datasets(tasks: str, data_root: str | None, data: list[str], timeout_s: float) -> Check:
    """The benchmark datasets, checked by ``dppo eval check`` (no model loaded)."""
    cmd = [sys.executable, "-m", "dppo_embodied.cli", "eval", "check", "--tasks", tasks]
    if data_root:
        cmd += ["--data-root", data_root]
    for item in data:
        cmd += ["--data", item]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return Check("datasets", "fail", f"dppo eval check gave no answer within {timeout_s:g} s")
    text = (r.stdout + r.stderr).strip().replace("dppo eval check: error: ", "")
    if r.returncode == 0:
        return Check("datasets", "ok", text.splitlines()[-1] if text else "all present")
    return Check("datasets", "fail", text or f"dppo eval check exited {r.returncode}",
                 "download the listed datasets with the commands shown, or point --data-root / --data at them")


def run_checks(args: argparse.Namespace) -> list[Check]:
    """Every check the flags ask for, in order."""
    checks = [check_python(), check_path(), *check_extras()]
    if not args.skip_render:
        checks.append(check_render(args.timeout))
    checks += check_cuda(args.timeout)
    checks.append(check_disk(Path(args.disk_path), args.min_free_gb))
    if args.tasks or args.data:
        checks.append(check_datasets(args.tasks or ",".join(d.partition("=")[0] for d in args.data),
                                     args.data_root, args.data, max(args.timeout, 120.0)))
    return checks


def make_parser() -> argparse.ArgumentParser:
    """Argument parser of ``dppo doctor``."""
    p = argparse.ArgumentParser(prog="dppo doctor", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[1:]))
    p.add_argument("--tasks", help="benchmark tasks or groups whose datasets to check (e.g. pelican)")
    p.add_argument("--data-root", help="folder holding one dataset folder per task")
    p.add_argument("--data", action="append", default=[], metavar="TASK=DIR",
                   help="a task's own dataset folder (repeatable)")
    p.add_argument("--disk-path", default=".", help="where runs will be written (default: here)")
    p.add_argument("--min-free-gb", type=float, default=5.0, help="free disk required (default 5 GB)")
    p.add_argument("--skip-render", action="store_true", help="skip the MuJoCo render (robot computer without sim)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per probe (default 60)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run ``dppo doctor``; 0 when every required check passes, 1 otherwise."""
    args = make_parser().parse_args(argv)
    checks = run_checks(args)
    failed = [c for c in checks if c.status == "fail"]
    if args.json:
        sys.stdout.write(json.dumps({"ok": not failed, "checks": [asdict(c) for c in checks]}, indent=2) + "\n")
        return 1 if failed else 0
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        detail = c.detail.replace("\n", "\n" + " " * (width + 9))
        lines.append(f"[{c.status.upper():4}] {c.name:<{width}}  {detail}")
        if c.fix:
            lines.append(f"{'':6} {'':<{width}}  fix: {c.fix}")
    lines.append(f"dppo doctor: {len(failed)} required check(s) failed: {', '.join(c.name for c in failed)}"
                 if failed else "dppo doctor: all required checks passed")
    sys.stdout.write("\n".join(lines) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
