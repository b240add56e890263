"""The eval-split outputs a stage's model gave, saved beside it: the reference its exported files are compared with,
so later stages compare without rebuilding the model. One tensor per output name (logits; or scores and boxes,
channel-major as the files give them).

Folders written before one chain ran every task (edgekit <= 0.1 at commit 72157ce) hold a classifier's logits in
``eval_logits.safetensors`` and a detector's outputs location-major; both are still read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.numpy import save_file

EVAL_OUTPUTS = "eval_outputs.safetensors"
LAYOUT = {"layout": "as the exported files give them"}
OLD_LOGITS = "eval_logits.safetensors"


def save_outputs(folder: Path, outputs: dict[str, np.ndarray]) -> None:
    save_file({k: np.ascontiguousarray(v) for k, v in outputs.items()}, str(Path(folder) / EVAL_OUTPUTS),
              metadata=LAYOUT)


def load_outputs(folder: Path) -> dict[str, np.ndarray]:
    path = Path(folder) / EVAL_OUTPUTS
    if not path.is_file() and (Path(folder) / OLD_LOGITS).is_file():
        path = Path(folder) / OLD_LOGITS
    with safe_open(str(path), framework="numpy") as f:
        outputs = {k: f.get_tensor(k) for k in f.keys()}
        current = f.metadata() == LAYOUT
    if not current and "scores" in outputs:  # an earlier detection stage saved them location-major
        outputs = {k: v.transpose(0, 2, 1) for k, v in outputs.items()}
    return outputs


def load_logits(folder: Path) -> torch.Tensor:
    """A classifier stage's eval-split logits."""
    return torch.from_numpy(np.ascontiguousarray(load_outputs(folder)["logits"]))
