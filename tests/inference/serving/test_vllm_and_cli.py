"""The vLLM launcher (command line, environment, missing install) and ``dppo serve`` as a real process."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from dppo_embodied.errors import DependencyNotInstalled
from dppo_embodied.imports import is_available
from inference.serving.cli import config_from_args, main
from inference.serving.server import ServeConfig
from inference.serving.vllm_launcher import VLLMNotInstalled, VLLMSettings, build_vllm_command, find_vllm, vllm_env

ROOT = Path(__file__).resolve().parents[3]


def test_vllm_command_has_robot_settings() -> None:
    cfg = ServeConfig(model="ckpt/pelican", backend="vllm", port=8123, api_key="k3y", max_pixels=448 * 448,
                      extra_args=["--seed", "1"])
    cmd = build_vllm_command(cfg, VLLMSettings(gpu_memory_utilization=0.8), vllm=["vllm"])
    s = " ".join(cmd)
    assert cmd[:3] == ["vllm", "serve", "ckpt/pelican"]
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1" and cmd[cmd.index("--port") + 1] == "8123"
    assert json.loads(cmd[cmd.index("--limit-mm-per-prompt") + 1]) == {"image": 2}
    assert cmd[cmd.index("--max-model-len") + 1] == "8192" and cmd[cmd.index("--max-num-seqs") + 1] == "4"
    assert "--enable-prefix-caching" in cmd and cmd[cmd.index("--mm-processor-cache-gb") + 1] == "0"
    assert json.loads(cmd[cmd.index("--mm-processor-kwargs") + 1]) == {"max_pixels": 448 * 448}
    assert cmd[cmd.index("--served-model-name") + 1] == "pelican" and cmd[-2:] == ["--seed", "1"]
    assert "k3y" not in s  # the key travels in the environment, not on the command line (ps shows argv)
    env = vllm_env(cfg, base={"PATH": "/bin", "VLLM_API_KEY": "stale"})
    assert env["VLLM_API_KEY"] == "k3y" and env["VLLM_MEDIA_URL_ALLOW_REDIRECTS"] == "0"
    assert "VLLM_API_KEY" not in vllm_env(ServeConfig(model="m", backend="vllm"), base={"VLLM_API_KEY": "stale"})


@pytest.mark.skipif(is_available("vllm"), reason="vllm is installed")
def test_missing_vllm_is_a_clear_error(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(VLLMNotInstalled, match="pip install vllm") as e:
        find_vllm()
    assert isinstance(e.value, DependencyNotInstalled)
    assert main(["--model", "org/ckpt", "--backend", "vllm"]) == 1
    err = capsys.readouterr().err
    assert "vllm" in err and "--backend transformers" in err


def test_cli_yaml_and_passthrough(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DPPO_API_KEY", raising=False)
    p = tmp_path / "serve.yaml"
    p.write_text("model: org/ckpt\nmax_batch_size: 2\nport: 9000\n")
    cfg, verbose = config_from_args(["--config", str(p), "--port", "9001", "-v", "--", "--enforce-eager"])
    assert (cfg.model, cfg.max_batch_size, cfg.port, verbose) == ("org/ckpt", 2, 9001, 1)
    assert cfg.extra_args == ["--enforce-eager"] and cfg.api_key is None
    assert main([]) == 2


def test_busy_port_fails_before_loading(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        assert main(["--model", "org/model", "--port", str(port)]) == 1
    assert "cannot bind" in capsys.readouterr().err


@pytest.mark.network
def test_dppo_serve_process(tiny_vlm_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DPPO_API_KEY": "proc-key"}
    proc = subprocess.Popen([sys.executable, "-m", "dppo_embodied.cli", "serve", "--model", str(tiny_vlm_path),
                             "--port", "0", "--max-tokens", "8", "--threads", "1"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()  # type: ignore
        url, t_end, seen = None, time.monotonic() + 120, []
        while url is None and time.monotonic() < t_end and proc.poll() is None:
            try:
                line = lines.get(timeout=1.0)
            except queue.Empty:
                continue
            seen.append(line)
            if line.startswith("dppo serve:"):
                url = line.split(" on ", 1)[1].split(" ", 1)[0]
                assert "API key required" in line
        assert url is not None, "".join(seen)
        name = tiny_vlm_path.name
        assert httpx.get(f"{url}/models").status_code == 401
        h = {"Authorization": "Bearer proc-key"}
        assert httpx.get(f"{url}/models", headers=h).json()["data"][0]["id"] == name
        r = httpx.post(f"{url}/chat/completions", headers=h, timeout=60,
                       json={"model": name, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 4})
        assert r.status_code == 200 and r.json()["choices"][0]["finish_reason"] in ("stop", "length")
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                assert proc.wait(15) in (0, -signal.SIGTERM)  # uvicorn shuts down, then re-raises SIGTERM
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(5)
