"""The eval-split outputs a stage's model gave, saved beside it: the reference its exported files are compared
with, so later stages compare without rebuilding the model. One tensor per output name (logits; or scores
and boxes, channel-major as the files give them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

EVAL_OUTPUTS = "eval_outputs.safetensors"


def save_outputs(folder: Path, outputs: dict[str, np.ndarray]) -> None:
    save_file({k: np.ascontiguousarray(v) for k, v in outputs.items()}, str(Path(folder) / EVAL_OUTPUTS))


def load_outputs(folder: Path) -> dict[str, np.ndarray]:
    return load_file(str(Path(folder) / EVAL_OUTPUTS))


def load_logits(folder: Path) -> torch.Tensor:
    """A classifier stage's eval-split logits."""
    return torch.from_numpy(load_outputs(folder)["logits"])
