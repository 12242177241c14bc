"""The metaloop's own TensorBoard run: held-out success per capability after every evaluation, in one run folder.

TRL writes each phase's scalars (loss, reward, ...) under ``<run>/<phase>/k<k>/runs/``; the metaloop's figures go to
``<run>/tensorboard/`` (one run, open it with ``tensorboard --logdir <run>/tensorboard``):

* ``heldout/<capability>``, ``heldout/overall`` and ``general/overall`` (0-100) against the evaluation's index in
  the run (0 = base, then one per loop: the loop step);
* the same under ``heldout_vs_compute/...`` against the training compute spent so far (CPU/GPU seconds).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: the metaloop's TensorBoard folder inside a run folder
FOLDER = "tensorboard"


def log_evaluation(out: Path, index: int, figures: dict[str, Any]) -> Path | None:
    """Append one evaluation's figures (``training.algorithm.evaluation.evaluate``'s) to ``<out>/tensorboard``.

    Args:
        out: the run folder.
        index: the evaluation's position in the run (0 = base): the x axis of ``heldout/...``.
        figures: ``{"tag", "compute_s", "heldout": {"overall", "per_capability"}, "general": {...} | None}``.

    Returns:
        The folder written, or ``None`` when TensorBoard is not installed (a warning says how to get it).
    """
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:  # tensorboard is in the train extra; a run without it still works
        logger.warning("held-out results not logged to TensorBoard (%s); pip install tensorboard", e)
        return None
    folder = out / FOLDER
    held, general = figures["heldout"], figures.get("general")
    scalars = {"heldout/overall": held["overall"], **{f"heldout/{c}": v for c, v in
                                                      held.get("per_capability", {}).items()}}
    if general:
        scalars["general/overall"] = general["overall"]
    compute = round(float(figures.get("compute_s") or 0.0))
    with SummaryWriter(log_dir=str(folder)) as w:
        for name, value in scalars.items():
            if value is None:
                continue
            w.add_scalar(name, float(value), index)
            w.add_scalar(name.replace("heldout/", "heldout_vs_compute/", 1).replace(
                "general/", "general_vs_compute/", 1), float(value), compute)
        w.add_text("evaluations", f"{index}: {figures.get('tag')} (compute {compute} s)", index)
    return folder
