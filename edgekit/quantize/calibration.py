"""PTQ calibration on a seeded random sample of the whole training split.

Taking the first images in file order is not a sample: an ImageFolder train split is sorted by class,
so the observers would see one or two classes and set ranges that clip the others.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


def calibration_indices(count: int, images: int, seed: int) -> torch.Tensor:
    """``images`` indices drawn without replacement from ``range(count)`` (all of them when it is smaller)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(count, generator=generator)[:min(images, count)]


@torch.no_grad()
def calibrate(feed: Callable[[torch.Tensor], Any], x: torch.Tensor, *, images: int, batch_size: int, seed: int,
              labels: torch.Tensor | None = None) -> dict[str, Any]:
    """Runs the sampled images (no augmentation) through ``feed`` (the prepared graph's observers) in batches.

    Returns what stage.json states about the sample: its size, how it was drawn and, given labels, the
    number of images of each class it holds."""
    picked = calibration_indices(len(x), images, seed)
    for start in range(0, len(picked), batch_size):
        feed(x[picked[start:start + batch_size]])
    info: dict[str, Any] = {"images": len(picked), "of": len(x), "seed": seed,
                            "sampling": "seeded random sample without replacement over the whole training split"}
    if labels is not None:
        classes, counts = torch.unique(labels[picked], return_counts=True)
        info["images_per_class"] = {int(c): int(n) for c, n in zip(classes, counts)}
    return info
