"""One training loop for every stage: the teacher from labels, the student and QAT from the teacher.

Flat on purpose (in the spirit of nanoGPT's train.py): shuffle, augment, forward, loss, step, log.
The caller sets the model's mode (a PT2E graph cannot use ``.train()``), so this loop never does.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from edgekit.distill.progress import progress_bar
from edgekit.errors import EdgekitError
from edgekit.pipeline.resume import end_epoch, start_or_resume

LossFn = Callable[[torch.Tensor, torch.Tensor | None, torch.Tensor], tuple[torch.Tensor, dict[str, float]]]
SHIFT = 2  # random translation of up to this many pixels


def augment(x: torch.Tensor, generator: torch.Generator, hflip: bool = False) -> torch.Tensor:
    """Random translation by up to SHIFT pixels (edges replicated), optional horizontal flips.

    Deterministic given the generator. Flips are off by default: digits and text must not mirror.
    """
    n, _, h, w = x.shape
    padded = F.pad(x, (SHIFT, SHIFT, SHIFT, SHIFT), mode="replicate")
    offsets = torch.randint(0, 2 * SHIFT + 1, (n, 2), generator=generator)
    out = torch.stack([padded[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(offsets.tolist())])
    if hflip:
        flip = torch.rand(n, generator=generator) < 0.5
        out[flip] = out[flip].flip(-1)
    return out


def optimization_step(loss: torch.Tensor, parts: dict[str, float], optimizer: torch.optim.Optimizer,
                      scheduler: torch.optim.lr_scheduler.LRScheduler, sums: dict[str, float], stage: str,
                      epoch: int) -> None:
    """One step of any training loop: stop on a non-finite loss, step optimizer and schedule, add up the loss terms."""
    if not torch.isfinite(loss.detach()):
        raise EdgekitError(f"{stage}: the loss became {float(loss.detach())} in epoch {epoch + 1}",
                           "lower the learning rate (e.g. halve it) and rerun")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    scheduler.step()
    for k, v in parts.items():
        sums[k] = sums.get(k, 0.0) + v


def train(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    loss_fn: LossFn,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    stage: str,
    teacher: torch.nn.Module | None = None,
    hflip: bool = False,
    weight_decay: float = 4e-5,
) -> list[dict[str, float]]:
    """SGD with Nesterov momentum and a cosine schedule; returns the mean loss terms per epoch."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    steps_per_epoch = math.ceil(len(y) / batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch,
                                                    pct_start=0.15, anneal_strategy="cos")
    checkpoint, first, history = start_or_resume(stage, model, optimizer, scheduler, epochs, seed)
    with progress_bar() as bar:
        task = bar.add_task(f"{stage}", total=epochs * steps_per_epoch, completed=first * steps_per_epoch, info="")
        for epoch in range(first, epochs):
            generator = torch.Generator().manual_seed(seed * 1000 + epoch)
            order = torch.randperm(len(y), generator=generator)
            sums: dict[str, float] = {}
            for step in range(steps_per_epoch):
                idx = order[step * batch_size:(step + 1) * batch_size]
                xb, yb = augment(x[idx], generator, hflip), y[idx]
                teacher_logits = None
                if teacher is not None:
                    with torch.no_grad():
                        teacher_logits = teacher(xb)
                loss, parts = loss_fn(model(xb), teacher_logits, yb)
                optimization_step(loss, parts, optimizer, scheduler, sums, stage, epoch)
                bar.update(task, advance=1, info=f"epoch {epoch + 1}/{epochs} loss {float(loss.detach()):.3f}")
            history.append({k: round(v / steps_per_epoch, 5) for k, v in sums.items()})
            end_epoch(checkpoint, epoch, history, model, optimizer, scheduler)
    return history


@torch.no_grad()
def predict(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Logits for every row of x, in batches."""
    return torch.cat([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    return float((logits.argmax(1) == y).float().mean())
