"""Our own weights on disk: safetensors plus a JSON side file describing how to rebuild the model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from edgekit.pipeline.atomic import write_json_atomic
from edgekit.pipeline.tensor_files import write_safetensors

WEIGHTS = "model.safetensors"
SPEC = "model.json"


def save_weights(model: torch.nn.Module, folder: Path, spec: dict[str, Any]) -> None:
    write_safetensors(model.state_dict(), Path(folder) / WEIGHTS)
    write_json_atomic(Path(folder) / SPEC, spec)


def read_spec(folder: Path) -> dict[str, Any]:
    return json.loads((Path(folder) / SPEC).read_text(encoding="utf-8"))


def load_state(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(Path(folder) / WEIGHTS))


def count_parameters(model: torch.nn.Module) -> int:
    """Trainable and frozen parameters; a teacher run by another runtime (ONNX) states its own count."""
    return getattr(model, "parameter_count", None) or sum(p.numel() for p in model.parameters())
