"""One training loop for every stage and every task: the teacher from labels, the student and QAT from the teacher.

Flat on purpose (in the spirit of nanoGPT's train.py): shuffle, augment, forward, loss, step, log. What differs
between tasks is a ``Recipe``: the optimizer, each epoch's augmentation views, how a batch and its targets are
built, and how student and teacher run (classification's defaults here; detection's in tasks/detect.py).
The caller sets the model's mode (a PT2E graph cannot use ``.train()``), so this loop never does.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DistributedSampler

from edgekit.distill.hooks import FeatureTap
from edgekit.distill.progress import progress_bar
from edgekit.distill.soft_label_cache import SoftLabelCache
from edgekit.distill.teacher_feed import TeacherFeed, runs_on_device
from edgekit.errors import EdgekitError
from edgekit.pipeline.distributed import all_sum, all_true, world
from edgekit.pipeline.resume import end_epoch, start_or_resume

LossFn = Callable[[Any, Any, torch.Tensor], tuple[torch.Tensor, dict[str, float]]]
SHIFT = 2  # random translation of up to this many pixels
VIEW_SEEDS = 10**13  # augmentation generators live apart from the order generators (seed * 1000 + epoch < 2**32 * 1000)


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """An epoch's image order, the same for every task: a permutation seeded by (seed, epoch)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1000 + epoch))


def epoch_plan(n: int, seed: int, augment_seed: int, epoch: int, hflip: bool
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """An epoch's image order and each image's augmentation view: shift (dy, dx) and flip.

    The order comes from ``seed``; the views from ``augment_seed`` and are drawn for every image at once, so
    an image's view depends on (augment seed, epoch, image) alone, not on the batch it lands in. That is
    what lets the soft-label cache reuse the teacher's outputs across runs, batch sizes and stages.
    """
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1000 + epoch))
    views = torch.Generator().manual_seed(VIEW_SEEDS + augment_seed * 1000 + epoch)
    shifts = torch.randint(0, 2 * SHIFT + 1, (n, 2), generator=views)
    flips = torch.rand(n, generator=views) < 0.5 if hflip else torch.zeros(n, dtype=torch.bool)
    return order, shifts, flips


def augment(x: torch.Tensor, shifts: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """Translate each image by its shift (up to SHIFT pixels, edges replicated); mirror the flipped ones.

    Flips are off by default (``hflip``): digits and text must not mirror.
    """
    n, _, h, w = x.shape
    padded = F.pad(x, (SHIFT, SHIFT, SHIFT, SHIFT), mode="replicate")
    out = torch.stack([padded[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(shifts.tolist())])
    if bool(flips.any()):
        out[flips] = out[flips].flip(-1)
    return out


def sgd(params: list[torch.nn.Parameter], lr: float, weight_decay: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)


def shifted_views(n: int, seed: int, augment_seed: int, epoch: int, hflip: bool, batch: int) -> Any:
    """Each image's shift and flip for the epoch (``epoch_plan``); the order comes from ``epoch_order``."""
    _, shifts, flips = epoch_plan(n, seed, augment_seed, epoch, hflip)
    return shifts, flips


def labelled_batch(x: torch.Tensor, y: Any, idx: torch.Tensor, views: Any) -> tuple[torch.Tensor, Any]:
    shifts, flips = views
    return augment(x[idx], shifts[idx], flips[idx]), y[idx]


@dataclass
class Recipe:
    """What a task's training differs in; the defaults are classification's (SGD with Nesterov momentum,
    shifted and optionally flipped views, labels as targets, models run as they are)."""

    optimizer: Callable[[list[torch.nn.Parameter], float, float], torch.optim.Optimizer] = sgd
    weight_decay: float = 4e-5
    warmup: float = 0.15  # share of the one-cycle schedule spent rising
    views: Callable[[int, int, int, int, bool, int], Any] = shifted_views
    batch: Callable[[torch.Tensor, Any, torch.Tensor, Any], tuple[torch.Tensor, Any]] = labelled_batch
    student_forward: Callable[[Any, torch.Tensor], Any] | None = None  # None: the model (through the feature tap)
    teacher_forward: Callable[[Any, torch.Tensor], Any] | None = None  # None: the teacher feed (soft-label cache)
    channels_last: bool = False  # train a plain module in channels-last layout (restored afterwards)


CLASSIFICATION = Recipe()


def optimization_step(loss: torch.Tensor, parts: dict[str, float], optimizer: torch.optim.Optimizer,
                      scheduler: torch.optim.lr_scheduler.LRScheduler, sums: dict[str, float], stage: str,
                      epoch: int, shared: list[torch.nn.Parameter] = ()) -> None:
    """One step of any training loop: stop on a non-finite loss, step optimizer and schedule, add up the loss terms.

    With several processes the stop is collective (all stop at the same step), and the gradients of
    ``shared`` parameters that DistributedDataParallel does not see (a loss's adapters) are averaged here.
    """
    if not all_true(bool(torch.isfinite(loss.detach()))):
        raise EdgekitError(f"{stage}: the loss became {float(loss.detach())} in epoch {epoch + 1}",
                           "lower the learning rate (e.g. halve it) and rerun")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    for p in shared if world().size > 1 else ():
        if p.grad is not None:
            p.grad = all_sum(p.grad) / world().size
    optimizer.step()
    scheduler.step()
    for k, v in parts.items():
        sums[k] = sums.get(k, 0.0) + v


def train(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: Any,
    *,
    loss_fn: LossFn,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    stage: str,
    teacher: Callable[[torch.Tensor], torch.Tensor] | None = None,
    hflip: bool = False,
    augment_seed: int | None = None,
    soft_labels: SoftLabelCache | None = None,
    timings: list[float] | None = None,
    cache_stats: dict[str, int] | None = None,
    device: torch.device | None = None,
    recipe: Recipe = CLASSIFICATION,
) -> list[dict[str, float]]:
    """A one-cycle schedule over ``recipe``'s optimizer; returns the mean loss terms per epoch.

    ``y`` holds the targets ``recipe.batch`` picks from (labels; a detection split's boxes and labels).
    ``loss_fn`` may carry trained parameters (FitNet's adapters) and name the layers it reads of the
    student and the teacher (distill/losses.py); ``soft_labels`` serves the teacher's side from disk.
    ``timings`` receives the wall seconds of each epoch run here (the soft-label cache's effect is measured so),
    ``cache_stats`` how many epochs' soft labels were read from the cache and how many computed.
    ``device`` (pipeline/distributed.training_device; default the CPU) is where the model, the loss's
    parameters, the batches and the teacher (when it is a torch module) live while training; the data,
    the augmentation and the cache stay on the CPU, and everything is back on the CPU on return.
    """
    device = torch.device("cpu") if device is None else device
    augment_seed = seed if augment_seed is None else augment_seed
    w = world()
    n = len(x)
    extra = list(getattr(loss_fn, "parameters", list)())
    placed = _place(device, model, extra, teacher)
    params = [p for p in model.parameters() if p.requires_grad] + extra
    optimizer = recipe.optimizer(params, lr, recipe.weight_decay)
    batch = batch_size if w.size == 1 else math.ceil(batch_size / w.size)  # the same images per step in all
    steps_per_epoch = math.ceil(math.ceil(n / w.size) / batch)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch,
                                                    pct_start=recipe.warmup, anneal_strategy="cos")
    checkpoint, first, history = start_or_resume(stage, model, optimizer, scheduler, epochs, seed, extra)
    # Buffers (batch-norm statistics, QAT observers) stay each process's own; rank 0's are the ones saved.
    # Broadcasting them at every forward, DDP's default, broke the fake-quantize ranges of a PT2E QAT graph.
    net = torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None,
        forward_sync_buffers=False) if w.size > 1 else model
    feed = (TeacherFeed(teacher, loss_fn, soft_labels, x[:1], n, epochs, stage, device=device)
            if teacher is not None and recipe.teacher_forward is None else None)
    layers, embedding = list(getattr(loss_fn, "student_layers", [])), bool(getattr(loss_fn, "embedding", False))
    tap = FeatureTap(model, layers, "student", embedding, call=net) if feed is not None and (layers or embedding) else None
    forward = recipe.student_forward or (lambda _m, xb: tap.run(xb) if tap is not None else net(xb))
    layout = torch.channels_last if recipe.channels_last else torch.contiguous_format
    for m in (model, teacher) if recipe.channels_last else ():
        if isinstance(m, torch.nn.Module):
            m.to(memory_format=torch.channels_last)
    set_progress = getattr(loss_fn, "set_progress", None)
    try:
        with progress_bar() as bar:
            task = bar.add_task(f"{stage}", total=epochs * steps_per_epoch, completed=first * steps_per_epoch, info="")
            for epoch in range(first, epochs):
                started = time.perf_counter()
                order = epoch_order(n, seed, epoch)
                views = recipe.views(n, seed, augment_seed, epoch, hflip, batch)
                mine, own = shard(order, n, seed, epoch)
                if feed is not None:
                    feed.start_epoch(epoch)
                sums: dict[str, float] = {}
                for step in range(steps_per_epoch):
                    idx = mine[step * batch:(step + 1) * batch]
                    xb, yb = recipe.batch(x, y, idx, views)
                    xb = xb.contiguous(memory_format=layout).to(device)
                    yb = yb.to(device) if isinstance(yb, torch.Tensor) else yb
                    if set_progress is not None:
                        set_progress((epoch * steps_per_epoch + step) / (epochs * steps_per_epoch))
                    if recipe.teacher_forward is not None and teacher is not None:
                        with torch.no_grad():
                            teacher_out = recipe.teacher_forward(teacher, xb)
                    else:
                        teacher_out = feed(xb, idx, own[step * batch:(step + 1) * batch]) if feed is not None else None
                    loss, parts = loss_fn(forward(net, xb), teacher_out, yb)
                    optimization_step(loss, parts, optimizer, scheduler, sums, stage, epoch, extra)
                    bar.update(task, advance=1, info=f"epoch {epoch + 1}/{epochs} loss {float(loss.detach()):.3f}")
                if feed is not None:
                    feed.end_epoch(epoch, all_sum if w.size > 1 else None)
                history.append(_epoch_means(sums, steps_per_epoch))
                if timings is not None:
                    timings.append(round(time.perf_counter() - started, 3))
                end_epoch(checkpoint, epoch, history, model, optimizer, scheduler, extra)
    finally:
        if cache_stats is not None and feed is not None and feed.cache is not None:
            cache_stats.update(read=feed.cache.hits, computed=feed.cache.misses)
        for hooks in (tap, feed):
            if hooks is not None:
                hooks.close()
        for m in (model, teacher) if recipe.channels_last else ():
            if isinstance(m, torch.nn.Module):
                m.to(memory_format=torch.contiguous_format)
        if placed:
            _place(torch.device("cpu"), model, extra, teacher)
    return history


def _place(device: torch.device, model: torch.nn.Module, extra: list[torch.nn.Parameter], teacher: object) -> bool:
    """Move what trains (and a torch teacher) to ``device``; False when all of it is there already.

    ``extra`` parameters move in place (``.data``), so the loss that owns them keeps the same objects.
    """
    params = [*model.parameters(), *extra]
    if all(p.device == device for p in params):
        return False
    model.to(device)
    for p in extra:
        p.data = p.data.to(device)
    if runs_on_device(teacher):
        teacher.to(device)
    return True


def shard(order: torch.Tensor, n: int, seed: int, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """This process's images for the epoch, and which of them it owns (is not a padding repeat of).

    One process: the epoch's order, all owned. Several: torch's DistributedSampler (shuffled by seed and
    epoch, padded to a multiple of the processes by repeating its first images, rank r taking every r-th).
    """
    w = world()
    if w.size == 1:
        return order, torch.ones(n, dtype=torch.bool)
    sampler = DistributedSampler(range(n), num_replicas=w.size, rank=w.rank, shuffle=True, seed=seed)
    sampler.set_epoch(epoch)
    mine = torch.tensor(list(sampler), dtype=torch.int64)
    return mine, (w.rank + torch.arange(len(mine)) * w.size) < n


def _epoch_means(sums: dict[str, float], steps: int) -> dict[str, float]:
    """Mean loss terms of the epoch, over all processes."""
    if world().size > 1:
        keys = sorted(sums)
        total = all_sum(torch.tensor([sums[k] for k in keys], dtype=torch.float64)) / world().size
        sums = dict(zip(keys, total.tolist()))
    return {k: round(v / steps, 5) for k, v in sums.items()}


@torch.no_grad()
def predict(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Logits for every row of x, in batches."""
    return torch.cat([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    return float((logits.argmax(1) == y).float().mean())
