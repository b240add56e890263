"""Rebuild the models that earlier stages left on disk (safetensors + model.json; a user's .pt2)."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from edgekit.models.builders import build_model
from edgekit.models.checkpoint import WEIGHTS, load_state, read_spec
from edgekit.models.user_weights import load_exported
from edgekit.quantize import pt2e

EXPORTED_TEACHER = "model.pt2"
ONNX_TEACHER = "model.onnx"


def set_eval(model: torch.nn.Module) -> torch.nn.Module:
    try:
        model.eval()
    except NotImplementedError:  # an ExportedProgram's module refuses .eval(); it is frozen anyway
        model.training = False
    return model


def load_teacher(teacher_dir: Path) -> torch.nn.Module:
    teacher_dir = Path(teacher_dir)
    if (teacher_dir / ONNX_TEACHER).is_file():
        from edgekit.models.onnx_teacher import OnnxTeacher

        return OnnxTeacher(teacher_dir / ONNX_TEACHER)
    if (teacher_dir / EXPORTED_TEACHER).is_file():
        model = load_exported(teacher_dir / EXPORTED_TEACHER)
    else:
        model = build_model(read_spec(teacher_dir))
        model.load_state_dict(load_state(teacher_dir))
    for p in model.parameters():
        p.requires_grad_(False)
    return set_eval(model)


def load_student(distill_dir: Path) -> torch.nn.Module:
    model = build_model(read_spec(distill_dir))
    model.load_state_dict(load_state(distill_dir))
    return model.eval()


def load_prepared(distill_dir: Path, quantize_dir: Path, size: int) -> torch.nn.Module:
    """The fake-quantized student of the quantize stage, rebuilt graph-for-graph."""
    return load_prepared_module(load_student(distill_dir), quantize_dir, size)


def load_prepared_module(student: torch.nn.Module, quantize_dir: Path, size: int) -> torch.nn.Module:
    """The quantize stage's prepared graph around ``student`` (any model the stage prepared), state restored."""
    spec = read_spec(quantize_dir)
    example = torch.zeros(2, 3, size, size)
    state = load_file(str(Path(quantize_dir) / WEIGHTS))
    return pt2e.rebuild_prepared(student, example, spec["method"], state)
