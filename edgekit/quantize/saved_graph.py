"""The quantize stage's prepared (fake-quantized) graph, rebuilt graph-for-graph from what the stage saved."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from edgekit.models.checkpoint import WEIGHTS, read_spec
from edgekit.models.stage_models import load_student
from edgekit.quantize import pt2e


def load_prepared(distill_dir: Path, quantize_dir: Path, size: int) -> torch.nn.Module:
    """The fake-quantized student of the quantize stage, rebuilt graph-for-graph."""
    return load_prepared_module(load_student(distill_dir), quantize_dir, size)


def load_prepared_module(student: torch.nn.Module, quantize_dir: Path, size: int) -> torch.nn.Module:
    """The quantize stage's prepared graph around ``student`` (any model the stage prepared), state restored."""
    spec = read_spec(quantize_dir)
    example = torch.zeros(2, 3, size, size)
    state = load_file(str(Path(quantize_dir) / WEIGHTS))
    return pt2e.rebuild_prepared(student, example, spec["method"], state, spec.get("weight_range", "full"))
