"""Training on several processes (DistributedDataParallel): who this process is, and the collective steps.

A process is one of several when ``WORLD_SIZE`` > 1 in its environment, as ``torchrun`` (one machine or
``--nnodes``) and ``edgekit compress --nproc N`` (pipeline/launch.py) set it. Every process runs the
chain; the training stages train in lockstep (the data split by a DistributedSampler, gradients
averaged), and only rank 0 writes into the run folder: stage outputs, checkpoints, the soft-label cache
and the reports. The others train in a scratch folder they discard, and skip export and benchmark.
Training runs on the CPU here, so the backend is gloo (nccl needs the tensors on a GPU).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

TRAINING_STAGES = ("teacher", "distill", "quantize")


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


_world = World()


def world() -> World:
    return _world


def launched_as_one_of_several() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


@contextmanager
def process_group() -> Iterator[World]:
    """Join the group the environment describes (env:// rendezvous); a single process joins nothing."""
    global _world
    if not launched_as_one_of_several():
        yield _world
        return
    import torch.distributed as dist

    dist.init_process_group("gloo")
    _world = World(dist.get_rank(), dist.get_world_size())
    try:
        yield _world
    finally:
        _world = World()
        dist.destroy_process_group()


def barrier() -> None:
    if _world.size > 1:
        torch.distributed.barrier()


def all_sum(t: torch.Tensor) -> torch.Tensor:
    """The element-wise sum over all processes (a copy; ``t`` itself is left alone)."""
    if _world.size == 1:
        return t
    out = t.detach().clone()
    torch.distributed.all_reduce(out, op=torch.distributed.ReduceOp.SUM)
    return out


def all_true(flag: bool) -> bool:
    """Whether ``flag`` holds on every process: a step stops everywhere at once, or nowhere."""
    if _world.size == 1:
        return flag
    return bool(all_sum(torch.tensor([int(flag)], dtype=torch.int64)).item() == _world.size)


def from_main(value: int) -> int:
    """Rank 0's value, on every process."""
    if _world.size == 1:
        return value
    t = torch.tensor([value], dtype=torch.int64)
    torch.distributed.broadcast(t, src=0)
    return int(t.item())
