"""A stand-in rollout replica for fleet tests: an OpenAI-compatible stdlib server on ``--port`` (127.0.0.1).

``python tests/training/replica_stub.py --port P [--exit-code N] [--hang]``: answers ``/health``, ``/v1/models``
and chat completions with ``"echo: <last user text>"``; ``--exit-code`` exits at once with that code after printing
an error (a replica that cannot start), ``--hang`` never listens (a replica that never comes up). It stops itself
after 120 s.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.helpers.fake_openai_server import _Handler, _Server, last_user_text


class _Stub:
    """What the fake server's handler reads from its owner."""

    api_key = None
    mode = "ok"
    latency_s = 0.0
    model = "policy"
    responder = staticmethod(lambda req: "echo: " + last_user_text(req))
    _stopped = threading.Event()

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._n = 0

    def _record(self, handler: object, req: object) -> None:
        pass

    def _track(self, conn: object, add: bool) -> None:
        pass

    def _take_failure(self) -> bool:
        return False

    def _next_id(self) -> int:
        with self._lock:
            self._n += 1
            return self._n


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--exit-code", type=int, default=None)
    p.add_argument("--hang", action="store_true")
    args, _ = p.parse_known_args()
    if args.exit_code is not None:
        print("replica_stub: cannot load the model (simulated)", flush=True)
        return args.exit_code
    if args.hang:
        time.sleep(120)
        return 0
    httpd = _Server(("127.0.0.1", args.port), _Handler)
    httpd.fake = _Stub()  # type: ignore[assignment]
    threading.Timer(120, httpd.shutdown).start()
    print(f"replica_stub on {args.port}", flush=True)
    httpd.serve_forever(poll_interval=0.05)
    return 0


if __name__ == "__main__":
    sys.exit(main())
