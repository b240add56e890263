"""Training on several processes (DistributedDataParallel): who this process is, and the collective steps.

A process is one of several when ``WORLD_SIZE`` > 1 in its environment, as ``torchrun`` (one machine or
``--nnodes``) and ``edgekit compress --nproc N`` (pipeline/launch.py) set it. Every process runs the
chain; the training stages train in lockstep (the data split by a DistributedSampler, gradients
averaged), and only rank 0 writes into the run folder: stage outputs, checkpoints, the soft-label cache
and the reports. The others train in a scratch folder they discard, and skip export and benchmark.

Backend: gloo on a machine without a GPU; with one, ``cpu:gloo,cuda:nccl``, so tensors on a GPU go
through nccl and those on the CPU (the stop flags, the QAT stage, ``train_device = "cpu"``) through gloo.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from edgekit.errors import EdgekitError

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


def backend() -> str:
    """The process group's backend on this machine."""
    return "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"


def training_device(choice: str = "auto") -> torch.device:
    """Where this process trains: ``auto`` takes this process's GPU when every process on the machine has
    one (``LOCAL_RANK`` picks it), else the CPU; ``cuda`` insists on a GPU; ``cpu`` never uses one."""
    if choice == "cpu":
        return torch.device("cpu")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    local_size = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if count >= local_size > 0:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if choice == "cuda":
        have = "no GPU is visible" if count == 0 else f"{local_size} processes share {count} GPU(s)"
        raise EdgekitError(f"train_device = cuda, but {have}", "train on the CPU (--train-device cpu or auto), "
                           "or start at most one process per GPU")
    return torch.device("cpu")


@contextmanager
def process_group() -> Iterator[World]:
    """Join the group the environment describes (env:// rendezvous); a single process joins nothing."""
    global _world
    if not launched_as_one_of_several():
        yield _world
        return
    import torch.distributed as dist

    gpu = training_device("auto")
    if gpu.type == "cuda":
        torch.cuda.set_device(gpu)  # nccl's communicator binds to it
    dist.init_process_group(backend())
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
