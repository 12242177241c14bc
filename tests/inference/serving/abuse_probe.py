"""Abuse probes of ``dppo serve`` (issue 9), run by hand against a real server process; prints one JSON report.

    python tests/inference/serving/abuse_probe.py --model CKPT [--root REPO] [--only nested,pixels,...] \
        [--starve-cap 120]

``--root`` runs the server from another checkout (e.g. an unmodified copy, for before/after figures). Probes: the
status code of a 100k-deep nested JSON body, text/plain and form bodies, a foreign ``Origin``, a lower-case
``bearer`` scheme, a 12,000-word prompt; the server's RSS before and after four concurrent requests of eight black
4096x4096 PNGs (and of one each); and the wait of a 4-token request sent 1 s after a huge one (n=8, max_tokens=4096,
temperature=2) and after an allowed big one (n=2, max_tokens=4000), with ``/health`` polled meanwhile. Not a test:
the figures depend on the machine.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures as cf
import io
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

KEY = "probe-key"


def _rss_mb(pid: int) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = round(int(value.split()[0]) / 1024, 1)
    return fields


class Server:
    """``python -m inference.serving.cli`` on a free loopback port, from ``root``."""

    def __init__(self, root: Path, model: str, *extra: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(root), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "TOKENIZERS_PARALLELISM": "false"}
        env.pop("DPPO_API_KEY", None)
        self.proc = subprocess.Popen([sys.executable, "-m", "inference.serving.cli", "--model", model, "--port", "0",
                                      "--served-model-name", "tiny", *extra], cwd=root, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            m = re.search(r"on (http://\S+/v1)", line)
            if m:
                self.url = m.group(1)
                break
        else:
            raise RuntimeError("server did not start")
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()  # type: ignore
        self.root = self.url[:-3]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _chat(text: str = "hi", **kw: Any) -> dict[str, Any]:
    return {"model": "tiny", "messages": [{"role": "user", "content": text}], **kw}


def _status(r: httpx.Response) -> dict[str, Any]:
    out: dict[str, Any] = {"status": r.status_code}
    try:
        body = r.json()
        out["message"] = body["error"]["message"][:160] if "error" in body else None
    except Exception:
        out["message"] = r.text[:80]
    return out


def probe_requests(url: str) -> dict[str, Any]:
    res: dict[str, Any] = {}
    nested = b"[" * 100_000 + b"]" * 100_000
    res["nested_100k"] = _status(httpx.post(f"{url}/chat/completions", content=nested,
                                            headers={"Content-Type": "application/json"}, timeout=60))
    body = json.dumps(_chat(max_tokens=4)).encode()
    res["text_plain"] = _status(httpx.post(f"{url}/chat/completions", content=body,
                                           headers={"Content-Type": "text/plain"}, timeout=60))
    res["form"] = _status(httpx.post(f"{url}/chat/completions", data={"x": body.decode()}, timeout=60))
    res["foreign_origin"] = _status(httpx.post(f"{url}/chat/completions", json=_chat(max_tokens=4),
                                               headers={"Origin": "https://evil.example"}, timeout=60))
    words = " ".join(f"word{i % 97}" for i in range(12_000))
    t0 = time.perf_counter()
    r = httpx.post(f"{url}/chat/completions", json=_chat(words, max_tokens=4), timeout=600)
    res["prompt_12k_words"] = {**_status(r), "seconds": round(time.perf_counter() - t0, 2),
                               "prompt_tokens": r.json().get("usage", {}).get("prompt_tokens")}
    return res


def probe_bearer(root: Path, model: str) -> dict[str, Any]:
    srv = Server(root, model, "--api-key", KEY)
    try:
        out = {}
        for scheme in ("Bearer", "bearer", "BEARER"):
            r = httpx.post(f"{srv.url}/chat/completions", json=_chat(max_tokens=2),
                           headers={"Authorization": f"{scheme} {KEY}"}, timeout=60)
            out[scheme] = r.status_code
        return out
    finally:
        srv.stop()


def _black_png_url(side: int = 4096) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (side, side)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def probe_pixels(srv: Server, per_request: int = 8) -> dict[str, Any]:
    url = _black_png_url()
    content = [{"type": "image_url", "image_url": {"url": url}} for _ in range(per_request)]
    content.append({"type": "text", "text": "hi"})
    body = {"model": "tiny", "messages": [{"role": "user", "content": content}], "max_tokens": 4}
    before = _rss_mb(srv.proc.pid)
    with cf.ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(lambda _: httpx.post(f"{srv.url}/chat/completions", json=body, timeout=600), range(4)))
    after = _rss_mb(srv.proc.pid)
    return {"body_kb": round(len(json.dumps(body)) / 1024), "rss_before_mb": before["VmRSS"],
            "rss_after_mb": after["VmRSS"], "peak_mb": after["VmHWM"], "statuses": [_status(r) for r in codes]}


def probe_starve(srv: Server, cap_s: float, big: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"big_request": {k: big[k] for k in ("n", "max_tokens", "temperature")}}
    health: list[Any] = []
    big_res: dict[str, Any] = {}

    def run_big() -> None:
        t0 = time.perf_counter()
        try:
            r = httpx.post(f"{srv.url}/chat/completions", json=_chat("Tell me a long story.", **big),
                           timeout=cap_s + 30)
            big_res.update(_status(r), seconds=round(time.perf_counter() - t0, 1))
            if r.status_code == 200:
                big_res["finish_reasons"] = sorted({c["finish_reason"] for c in r.json()["choices"]})
        except httpx.TimeoutException:
            big_res.update(status="client timeout", seconds=round(time.perf_counter() - t0, 1))

    th = threading.Thread(target=run_big, daemon=True)
    th.start()
    time.sleep(1.0)
    t0 = time.perf_counter()
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            try:
                health.append(httpx.get(f"{srv.root}/health", timeout=5).json())
            except Exception as e:
                health.append(repr(e))
            stop.wait(2.0)

    threading.Thread(target=poll, daemon=True).start()
    try:
        r = httpx.post(f"{srv.url}/chat/completions", json=_chat("hi", max_tokens=4), timeout=cap_s)
        out["small_request"] = {**_status(r), "wait_s": round(time.perf_counter() - t0, 2)}
    except httpx.TimeoutException:
        out["small_request"] = {"status": f"no answer within {cap_s} s (client gave up)",
                                "wait_s": round(time.perf_counter() - t0, 2)}
    stop.set()
    th.join(cap_s + 40)
    out["big_result"] = big_res
    out["health_during"] = health[:1] + health[len(health) // 2:len(health) // 2 + 1]
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--root", default=str(Path(__file__).resolve().parents[3]))
    p.add_argument("--only", default="requests,bearer,pixels,pixels_1,starve,starve_allowed")
    p.add_argument("--starve-cap", type=float, default=120.0)
    args = p.parse_args()
    root, only = Path(args.root), set(args.only.split(","))
    report: dict[str, Any] = {"root": str(root)}
    if "bearer" in only:
        report["bearer_with_key"] = probe_bearer(root, args.model)
    for name in ("requests", "pixels", "pixels_1", "starve", "starve_allowed"):
        if name not in only:
            continue
        srv = Server(root, args.model)
        try:
            httpx.post(f"{srv.url}/chat/completions", json=_chat(max_tokens=2), timeout=60)  # warm up
            if name == "requests":
                report["requests"] = probe_requests(srv.url)
            elif name == "pixels":
                report["pixels_4x8_4096"] = probe_pixels(srv)
            elif name == "pixels_1":
                report["pixels_4x1_4096"] = probe_pixels(srv, 1)
            elif name == "starve":
                report["starve"] = probe_starve(srv, args.starve_cap, {"n": 8, "max_tokens": 4096, "temperature": 2.0})
            else:
                report["starve_allowed"] = probe_starve(srv, args.starve_cap,
                                                        {"n": 2, "max_tokens": 4000, "temperature": 2.0})
        finally:
            srv.stop()
        print(json.dumps({k: v for k, v in report.items() if k.startswith(name[:6])}), file=sys.stderr, flush=True)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
