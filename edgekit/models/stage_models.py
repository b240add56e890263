"""Rebuild the models that earlier stages left on disk (safetensors + model.json; a user's .pt2)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from edgekit.models.builders import build_model
from edgekit.models.checkpoint import load_state, read_spec
from edgekit.models.user_weights import load_exported
from edgekit.pipeline.runner import stage_dir

EXPORTED_TEACHER = "model.pt2"
ONNX_TEACHER = "model.onnx"
ENSEMBLE_FILE = "ensemble.json"  # an ensemble teacher: member 1 in the folder itself, member i in member-<i>/
GUIDE = "guide"  # in the distill stage: the assistant or generation the student last learned from


def guide_folder(out: Path) -> Path:
    """Where the model the student last learned from lies: the distill stage's guide/, else the teacher stage."""
    guide = stage_dir(out, "distill") / GUIDE
    return guide if guide.is_dir() else stage_dir(out, "teacher")


def member_dir(teacher_dir: Path, index: int) -> Path:
    return Path(teacher_dir) if index == 0 else Path(teacher_dir) / f"member-{index + 1}"


def set_eval(model: torch.nn.Module) -> torch.nn.Module:
    try:
        model.eval()
    except NotImplementedError:  # an ExportedProgram's module refuses .eval(); it is frozen anyway
        model.training = False
    return model


def load_teacher(teacher_dir: Path) -> torch.nn.Module:
    """The teacher stage's teacher, frozen: one model, or an EnsembleTeacher of its members."""
    teacher_dir = Path(teacher_dir)
    if (teacher_dir / ENSEMBLE_FILE).is_file():
        from edgekit.models.ensemble import EnsembleTeacher

        ensemble = json.loads((teacher_dir / ENSEMBLE_FILE).read_text(encoding="utf-8"))
        members = [_load_one_teacher(member_dir(teacher_dir, i)) for i in range(int(ensemble["members"]))]
        return EnsembleTeacher(members, ensemble["weights"])
    return _load_one_teacher(teacher_dir)


def _load_one_teacher(teacher_dir: Path) -> torch.nn.Module:
    if (teacher_dir / ONNX_TEACHER).is_file():
        from edgekit.models.onnx_teacher import OnnxTeacher

        return OnnxTeacher(teacher_dir / ONNX_TEACHER)
    if (teacher_dir / EXPORTED_TEACHER).is_file():
        model = load_exported(teacher_dir / EXPORTED_TEACHER)
        model.opaque = True  # a flattened graph: no named layers for feature methods
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
