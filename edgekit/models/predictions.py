"""Eval-split logits a stage saves beside its model, so later stages compare without rebuilding it."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

PREDICTIONS = "eval_logits.safetensors"


def save_logits(folder: Path, logits: torch.Tensor) -> None:
    save_file({"logits": logits.detach().contiguous()}, str(Path(folder) / PREDICTIONS))


def load_logits(folder: Path) -> torch.Tensor:
    return load_file(str(Path(folder) / PREDICTIONS))["logits"]
