"""Rank helpers: every multi-process decision (SR tables, buffers, stop rule) is made on gathered data.

Single-process runs (no ``WORLD_SIZE`` > 1 in the environment: :func:`dppo_embodied.io.rank_world_from_env`) never
import torch nor initialise a process group; under a launcher the helpers use accelerate's ``gather_object`` /
``broadcast_object_list`` (gloo on CPU, NCCL on GPU), so all ranks end up with identical objects and take identical
decisions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from dppo_embodied.io import rank_world_from_env

T = TypeVar("T")


def _state() -> Any:
    """accelerate's process state. Without CUDA it is created with ``cpu=True``: under a launcher (``torchrun`` or
    ``accelerate launch --multi_gpu``) the processes then form a gloo group on CPU, the same one the Trainer joins."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def rank_world() -> tuple[int, int]:
    """``(rank, world_size)`` of this process (``(0, 1)`` outside a launcher, without importing torch)."""
    if rank_world_from_env()[1] == 1:
        return 0, 1
    s = _state()
    return int(s.process_index), int(s.num_processes)


def is_main() -> bool:
    """True on the main process."""
    return rank_world()[0] == 0


def shard(items: Sequence[T]) -> list[T]:
    """This rank's share of ``items`` (round-robin; all ranks together cover every item once)."""
    rank, world = rank_world()
    return list(items[rank::world]) if world > 1 else list(items)


def gather_dict(local: dict[str, Any]) -> dict[str, Any]:
    """Union of every rank's dict (keys are disjoint by construction of :func:`shard`), identical on all ranks."""
    if rank_world()[1] == 1:
        return dict(local)
    from accelerate.utils import gather_object

    merged: dict[str, Any] = {}
    for part in gather_object([local]):
        merged.update(part)
    return dict(sorted(merged.items()))


def gather_list(local: list[Any]) -> list[Any]:
    """Concatenation of every rank's list, in rank order, identical on all ranks."""
    if rank_world()[1] == 1:
        return list(local)
    from accelerate.utils import gather_object

    return list(gather_object(list(local)))


def broadcast(obj: T) -> T:
    """Rank 0's ``obj`` on every rank."""
    if rank_world()[1] == 1:
        return obj
    from accelerate.utils import broadcast_object_list

    box = [obj]
    broadcast_object_list(box, from_process=0)
    return box[0]


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if rank_world()[1] > 1:
        _state().wait_for_everyone()
