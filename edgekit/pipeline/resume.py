"""Per-epoch training checkpoints, so a run killed at any instant goes on from its last finished epoch.

A checkpoint holds everything the next epoch depends on: the model's weights (and any extra trained
parameters, such as distillation adapters), the optimizer's and the schedule's state, the epoch, the
loss history, and every random number generator's state (torch, numpy, Python; and the GPUs' when one
was used). The data order and augmentation are drawn from a generator seeded per epoch
(distill/train_loop.py), so with these a resumed run continues bit for bit as the uninterrupted one would have.

On disk: ``<out>/.resume/<stage>/<loop>.safetensors`` (every tensor) and ``<loop>.json`` (the rest,
and the stage's fingerprint), never a pickle. Each file is written to a temporary name, flushed, fsynced
and renamed over the old one, JSON last: the JSON names the tensors file's digest, so a kill between the
two renames leaves a pair that does not match and is ignored. A checkpoint from another fingerprint
(changed settings or inputs) is ignored too.

The stage runner (pipeline/runner.py) opens a slot for the stage it runs; training loops ask for
theirs with :func:`epoch_checkpoint`. Outside a stage (a library call) there is none and nothing is saved.
"""

from __future__ import annotations

import contextvars
import json
import os
import random
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file

from edgekit.pipeline.tensor_files import with_module_versions, write_safetensors
from edgekit.pipeline.atomic import write_text_atomic
from edgekit.pipeline.distributed import world
from edgekit.pipeline.faults import fault_point
from edgekit.pipeline.fingerprint import file_sha256

RESUME_DIR = ".resume"
FORMAT = "edgekit.checkpoint/1"

_slot: contextvars.ContextVar[tuple[Path, str, dict[str, float]] | None] = contextvars.ContextVar(
    "edgekit_resume_slot", default=None)


@contextmanager
def stage_slot(out: Path, stage: str, fingerprint: str) -> Iterator[dict[str, float]]:
    """While a stage runs, its training loops checkpoint under ``out/.resume/<stage>``.

    Yields the slot's statistics (checkpoint writes and the seconds they took), for the stage record."""
    folder = Path(out) / RESUME_DIR / stage
    stats = {"writes": 0, "seconds": 0.0}
    token = _slot.set((folder, fingerprint, stats))
    try:
        yield stats
    finally:
        _slot.reset(token)


def clear_stage_slot(out: Path, stage: str) -> None:
    """A finished stage's checkpoints are no longer needed."""
    shutil.rmtree(Path(out) / RESUME_DIR / stage, ignore_errors=True)
    try:
        (Path(out) / RESUME_DIR).rmdir()  # only when no other stage has one
    except OSError:
        pass


@dataclass
class Resumed:
    """What a loop needs to go on: the next epoch to run and the loss history so far."""

    next_epoch: int
    history: list[dict[str, float]]


class EpochCheckpoint:
    def __init__(self, folder: Path, fingerprint: str, name: str, stats: dict[str, float] | None = None) -> None:
        self.tensors_path = folder / f"{name}.safetensors"
        self.meta_path = folder / f"{name}.json"
        self.fingerprint = fingerprint
        self.name = name
        self.stats = stats if stats is not None else {"writes": 0, "seconds": 0.0}

    def save(self, epoch: int, history: list[dict[str, float]], model: torch.nn.Module,
             optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LRScheduler,
             extra: list[torch.nn.Parameter] | None = None) -> None:
        """Record the state after ``epoch`` (0-based) finished (rank 0 of several processes only: they agree)."""
        if not world().main:
            return
        started = time.perf_counter()
        self.tensors_path.parent.mkdir(parents=True, exist_ok=True)
        tensors: dict[str, torch.Tensor] = {}
        state = {
            "model": _encode(model.state_dict(), "model", tensors),
            "extra": [_encode(p.detach(), f"extra.{i}", tensors) for i, p in enumerate(extra or [])],
            "optimizer": _encode(optimizer.state_dict(), "optimizer", tensors),
            "scheduler": _encode(scheduler.state_dict(), "scheduler", tensors),
            "rng": {"torch": _encode(torch.get_rng_state(), "rng.torch", tensors),
                    "numpy": _encode(np.random.get_state(), "rng.numpy", tensors),
                    "python": _encode(random.getstate(), "rng.python", tensors)},
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["rng"]["cuda"] = _encode(torch.cuda.get_rng_state_all(), "rng.cuda", tensors)
        tmp = self.tensors_path.with_name(f".{self.tensors_path.name}.tmp-{os.getpid()}")
        try:
            write_safetensors(tensors, tmp)
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
        fault_point("checkpoint-write")
        os.replace(tmp, self.tensors_path)
        losses = [sum(h.values()) for h in history]
        best = min(range(len(losses)), key=losses.__getitem__) if losses else None
        meta = {"format": FORMAT, "fingerprint": self.fingerprint, "loop": self.name, "epoch": epoch,
                "history": history, "best": None if best is None else {"epoch": best, "train_loss": losses[best]},
                "tensors_sha256": file_sha256(self.tensors_path), "state": state}
        write_text_atomic(self.meta_path, json.dumps(meta) + "\n")
        self.stats["writes"] += 1
        self.stats["seconds"] += time.perf_counter() - started

    def restore(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                scheduler: torch.optim.lr_scheduler.LRScheduler,
                extra: list[torch.nn.Parameter] | None = None) -> Resumed | None:
        """Load the last checkpoint of this fingerprint into the objects given; None when there is none to use."""
        meta = self._matching_meta()
        if meta is None:
            return None
        tensors = load_file(str(self.tensors_path))
        state = meta["state"]
        model.load_state_dict(with_module_versions(_decode(state["model"], tensors), model))
        with torch.no_grad():
            for p, saved in zip(extra or [], state["extra"]):
                p.copy_(_decode(saved, tensors))
        optimizer.load_state_dict(_decode(state["optimizer"], tensors))
        scheduler.load_state_dict(_decode(state["scheduler"], tensors))
        torch.set_rng_state(_decode(state["rng"]["torch"], tensors))
        np.random.set_state(_decode(state["rng"]["numpy"], tensors))
        random.setstate(_decode(state["rng"]["python"], tensors))
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(_decode(state["rng"]["cuda"], tensors))
        return Resumed(next_epoch=int(meta["epoch"]) + 1, history=list(meta["history"]))

    def _matching_meta(self) -> dict[str, Any] | None:
        try:
            meta = json.loads(self.meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if meta.get("format") != FORMAT or meta.get("fingerprint") != self.fingerprint:
            return None
        try:
            if file_sha256(self.tensors_path) != meta.get("tensors_sha256"):
                return None
        except OSError:
            return None
        return meta


def epoch_checkpoint(name: str) -> EpochCheckpoint | None:
    """The checkpoint for the training loop ``name`` of the stage being run, or None outside a stage."""
    slot = _slot.get()
    if slot is None:
        return None
    folder, fingerprint, stats = slot
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return EpochCheckpoint(folder, fingerprint, safe, stats)


# A state dict as JSON plus named tensors, keeping the Python types that load_state_dict relies on
# (integer keys of an optimizer's state, tuples such as Adam's betas, numpy arrays of an RNG state).
def _encode(value: Any, path: str, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, torch.Tensor):
        tensors[path] = value.detach().cpu()  # a GPU's tensors are written from the CPU, and load there
        return {"__tensor__": path}
    if isinstance(value, np.ndarray):
        tensors[path] = torch.from_numpy(value.astype(np.int64) if value.dtype.kind in "ui" else value.copy())
        return {"__ndarray__": path, "dtype": str(value.dtype)}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, f"{path}.{i}", tensors) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, f"{path}.{i}", tensors) for i, v in enumerate(value)]
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {"__dict__": {k: _encode(v, f"{path}.{k}", tensors) for k, v in value.items()}}
        return {"__items__": [[k, _encode(v, f"{path}.{k}", tensors)] for k, v in value.items()]}
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot checkpoint a {type(value).__name__} at {path}")


def _decode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if "__tensor__" in value:
        return tensors[value["__tensor__"]]
    if "__ndarray__" in value:
        return tensors[value["__ndarray__"]].numpy().astype(value["dtype"])
    if "__tuple__" in value:
        return tuple(_decode(v, tensors) for v in value["__tuple__"])
    if "__items__" in value:
        return {k: _decode(v, tensors) for k, v in value["__items__"]}
    return {k: _decode(v, tensors) for k, v in value["__dict__"].items()}


def start_or_resume(stage: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler, epochs: int, seed: int,
                    extra: list[torch.nn.Parameter] | None = None
                    ) -> tuple[EpochCheckpoint | None, int, list[dict[str, float]]]:
    """A training loop's checkpoint, the epoch to start at (0-based) and the history so far.

    ``stage`` is the loop's label ("distill", "quantize (QAT)", "teacher (2 of 3)"), unique within its stage
    (it names the checkpoint); its first word names the stage to the user.
    A fresh start seeds numpy's and Python's generators (the caller seeded torch's before building the
    model), so nothing in training depends on the state a process happened to start with.
    """
    random.seed(seed)
    np.random.seed(seed)
    checkpoint = epoch_checkpoint(stage)
    if checkpoint is None:
        return None, 0, []
    resumed = checkpoint.restore(model, optimizer, scheduler, extra)
    if resumed is None:
        return checkpoint, 0, []
    if resumed.next_epoch >= epochs:  # one loop of several in a stage (an ensemble member, an assistant) had finished
        print(f"{stage}: finished before the interruption, restored from its checkpoint", file=sys.stderr, flush=True)
    else:
        print(f"resuming {stage.split()[0]} from epoch {resumed.next_epoch + 1} ({resumed.next_epoch} of {epochs} done)",
              file=sys.stderr, flush=True)
    return checkpoint, resumed.next_epoch, resumed.history


def end_epoch(checkpoint: EpochCheckpoint | None, epoch: int, history: list[dict[str, float]], model: torch.nn.Module,
              optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LRScheduler,
              extra: list[torch.nn.Parameter] | None = None) -> None:
    if checkpoint is not None:
        checkpoint.save(epoch, history, model, optimizer, scheduler, extra)
    fault_point("epoch-end")
