"""Logging set-up for command-line entry points (library code only calls ``logging.getLogger(__name__)``)."""

from __future__ import annotations

import logging
import os


def setup_logging(verbose: int = 0) -> None:
    """Configure the root logger once, for a CLI process. Level from ``-v`` count or ``DPPO_LOG_LEVEL``."""
    level_name = os.environ.get("DPPO_LOG_LEVEL")
    level = getattr(logging, level_name.upper(), logging.INFO) if level_name else (
        logging.DEBUG if verbose > 0 else logging.INFO
    )
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("httpx", "httpcore", "urllib3", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
