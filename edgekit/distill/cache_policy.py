"""Whether and where a training loop keeps the teacher's outputs (the ``soft_label_cache`` setting)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from edgekit.distill.soft_label_cache import SoftLabelCache
from edgekit.models.digest import model_digest, tensor_digest
from edgekit.distill.train_loop import SHIFT

if TYPE_CHECKING:
    from edgekit.config import Settings

CACHE_DIR = ".soft_labels"


def soft_label_cache(settings: Settings, out: Path, teacher: torch.nn.Module | None, x: torch.Tensor,
                     augment_seed: int) -> SoftLabelCache | None:
    """The cache for this teacher, these training images and this augmentation; None when switched off.

    ``auto`` keeps it in the run folder (``<out>/.soft_labels``), where reruns, the QAT stage and
    ``--force-stage distill`` find it; a folder path shares it between runs (``edgekit tune``'s trials).
    """
    if teacher is None or settings.soft_label_cache == "off":
        return None
    root = Path(out) / CACHE_DIR if settings.soft_label_cache == "auto" else Path(settings.soft_label_cache)
    identity = {"teacher": model_digest(teacher), "images": tensor_digest(x),
                "augment": f"seed={augment_seed} hflip={settings.hflip} shift={SHIFT}"}
    return SoftLabelCache(root, identity, len(x), settings.soft_label_cache_mb * 2**20)
