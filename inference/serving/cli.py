"""``dppo serve``: serve a checkpoint behind an OpenAI-compatible API.

    dppo serve --model checkpoints/tiny                       # transformers backend on 127.0.0.1:8000
    dppo serve --model ckpt --backend vllm --port 8000        # launches `vllm serve` with robot settings
    dppo serve --model ckpt --host 0.0.0.0 --api-key SECRET   # non-loopback needs a key
    dppo serve --config serve.yaml --port 8001                # YAML keys = ServeConfig fields; flags override
    dppo serve --backend expert --seed 0                      # the sim envs' scripted expert (rehearse dppo bridge)

Arguments after ``--`` go to ``vllm serve`` verbatim. The key may also come from ``DPPO_API_KEY``.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import yaml

from dppo_embodied.config import from_dict, load_yaml
from dppo_embodied.errors import ConfigError, DppoError
from dppo_embodied.model_ref import check_model_ref
from inference.serving.config import BACKENDS


def make_parser() -> argparse.ArgumentParser:
    """Argument parser of ``dppo serve`` (every flag defaults to "not given", so YAML values survive)."""
    p = argparse.ArgumentParser(prog="dppo serve", description=__doc__.splitlines()[0],
                                argument_default=argparse.SUPPRESS)
    p.add_argument("--config", help="YAML file of ServeConfig fields (flags override it)")
    p.add_argument("--model", help="checkpoint folder (tiny or real VLM); none with --backend expert")
    p.add_argument("--backend", choices=list(BACKENDS),
                   help="serving backend (default transformers); expert: the simulated envs' scripted expert, "
                        "which completes dppo bridge --robot sim tasks (no model needed)")
    p.add_argument("--seed", type=int, help="expert: the first twin scene seed, as the bridge's --seed (default 0)")
    p.add_argument("--policy-arg", dest="policy_arg", action="append", metavar="KEY=VALUE",
                   help="expert: a keyword argument of the policy, repeatable (seeds=64 n_objects=[3,5])")
    p.add_argument("--host", help="bind address (default 127.0.0.1; non-loopback needs --api-key)")
    p.add_argument("--port", type=int, help="port (default 8000; 0 = any free port)")
    p.add_argument("--api-key", dest="api_key", help="bearer token required on every /v1 request "
                   "(default: $DPPO_API_KEY)")
    p.add_argument("--served-model-name", dest="served_model_name", help="model id clients send "
                   "(default: the checkpoint folder name)")
    p.add_argument("--max-batch-size", dest="max_batch_size", type=int, help="requests per batch (default 8)")
    p.add_argument("--batch-window-ms", dest="batch_window_ms", type=float,
                   help="wait for more requests after the first one (default 5 ms)")
    p.add_argument("--max-tokens", dest="default_max_tokens", type=int, help="default max_tokens (default 256)")
    p.add_argument("--max-tokens-cap", dest="max_tokens_cap", type=int, help="largest max_tokens accepted")
    p.add_argument("--max-images", dest="max_images", type=int, help="images per request (default 8)")
    p.add_argument("--max-image-pixels", dest="max_image_pixels", type=int,
                   help="decoded pixels per image, larger ones get 413 (default 4096*4096)")
    p.add_argument("--max-request-pixels", dest="max_request_pixels", type=int,
                   help="decoded pixels of all images of a request (default 4096*4096)")
    p.add_argument("--max-work-tokens", dest="max_work_tokens", type=int,
                   help="the most n * max_tokens per request (default 8192)")
    p.add_argument("--max-model-len", dest="max_model_len", type=int,
                   help="context length for prompt + max_tokens (default: the model's max_position_embeddings)")
    p.add_argument("--request-timeout", dest="request_timeout_s", type=float,
                   help="seconds a request may take from arrival, queueing included (default 60)")
    p.add_argument("--max-request-timeout", dest="max_request_timeout_s", type=float,
                   help="largest timeout_s a request may ask for (default 600)")
    p.add_argument("--allow-origin", dest="allowed_origins", action="append",
                   help="browser origin allowed besides loopback when there is no key (repeatable)")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], help="model dtype (default float32)")
    p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--max-pixels", dest="max_pixels", type=int, help="max pixels per image (vision tokens)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--log-level", dest="log_level", choices=["critical", "error", "warning", "info", "debug"],
                   help="server log level (default warning)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    return p


def config_from_args(argv: list[str] | None) -> tuple[Any, int]:
    """Parse ``argv`` into a :class:`~inference.serving.server.ServeConfig` (and the verbosity)."""
    from inference.serving.config import ServeConfig

    args_list = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in args_list:
        i = args_list.index("--")
        args_list, extra = args_list[:i], args_list[i + 1:]
    ns = vars(make_parser().parse_args(args_list))
    verbose = int(ns.pop("verbose", 0))
    path = ns.pop("config", None)
    data: dict[str, Any] = load_yaml(path) if path else {}
    policy_args = dict(data.get("policy_args") or {})
    for item in ns.pop("policy_arg", None) or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--policy-arg {item!r} must look like KEY=VALUE (e.g. seeds=64)")
        policy_args[key.strip()] = yaml.safe_load(raw)
    if "seed" in ns:
        policy_args["seed"] = ns.pop("seed")
    if policy_args:
        data["policy_args"] = policy_args
    data.update(ns)
    if extra:
        data["extra_args"] = [*data.get("extra_args", []), *extra]
    if data.get("model") and data.get("backend", "transformers") != "expert":
        check_model_ref(str(data["model"]))  # before the port is bound and torch imported
    if not data.get("api_key") and os.environ.get("DPPO_API_KEY", "").strip():
        data["api_key"] = os.environ["DPPO_API_KEY"].strip()
    return from_dict(ServeConfig, data, source=path or "command line"), verbose


def main(argv: list[str] | None = None) -> int:
    """Run ``dppo serve``; returns the exit code."""
    from dppo_embodied.logs import setup_logging

    try:
        cfg, verbose = config_from_args(argv)
    except DppoError as e:
        print(f"dppo serve: {e}", file=sys.stderr)
        return 2
    setup_logging(verbose)
    try:
        if cfg.backend == "vllm":
            from inference.serving.vllm_launcher import launch_vllm

            return launch_vllm(cfg)
        return _serve(cfg)
    except DppoError as e:
        print(f"dppo serve: {e}", file=sys.stderr)
        return 1


def _serve(cfg: Any) -> int:
    from inference.serving.server import bind_socket, build_batcher, create_app, make_uvicorn

    sock = bind_socket(cfg.host, cfg.port)  # bind first: a busy port fails before the model loads
    try:
        batcher = _expert_batcher(cfg) if cfg.backend == "expert" else build_batcher(cfg)
    except BaseException:
        sock.close()
        raise
    try:
        app = create_app(batcher, cfg.model_name, api_key=cfg.api_key, limits=cfg.limits(),
                         max_body_bytes=int(cfg.max_body_mb * 1024 * 1024), decode_slots=cfg.decode_slots,
                         allowed_origins=cfg.allowed_origins)
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        auth = "API key required" if cfg.api_key else "no API key (loopback only)"
        what = (f"scripted expert, first scene seed {cfg.policy_args.get('seed', 0)}" if cfg.backend == "expert" else
                f"transformers backend, batch <= {cfg.max_batch_size}, context {batcher.backend.max_model_len} "
                "tokens")
        print(f"dppo serve: model {cfg.model_name!r} on http://{shown}:{port}/v1 ({what}, "
              f"request timeout {cfg.request_timeout_s:g} s, {auth})", flush=True)
        make_uvicorn(app, cfg.log_level).run(sockets=[sock])
    finally:
        batcher.close()
        close = getattr(batcher.backend, "close", None)
        if callable(close):
            close()
        sock.close()
    return 0


def _expert_batcher(cfg: Any) -> Any:
    """A one-request-at-a-time batcher over the scripted expert policy (the ``expert`` plugin)."""
    from inference.serving.batching import MicroBatcher
    from inference.serving.policy_backend import PolicyFnBackend, load_policy

    try:
        policy = load_policy("expert", **cfg.policy_args)
    except TypeError as e:
        raise ConfigError(f"--policy-arg: {e}") from e
    return MicroBatcher(PolicyFnBackend(policy), max_batch_size=1, window_s=0.0, max_queue=cfg.max_queue)


if __name__ == "__main__":
    sys.exit(main())
