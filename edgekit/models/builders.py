"""Models by name: torchvision builders for teachers and the MobileNet students.

A model is rebuilt from a small JSON spec (``{"arch": ..., "num_classes": ..., "width": ...}``) plus
its safetensors weights, never from a pickle.
"""

from __future__ import annotations

import difflib
from typing import Any

import torch
import torchvision
from torchvision.models import get_model, list_models

from edgekit import registry
from edgekit.errors import EdgekitError

STUDENTS = tuple(registry.STUDENTS)


def classification_archs() -> list[str]:
    return sorted(list_models(module=torchvision.models))


def build_model(spec: dict[str, Any]) -> torch.nn.Module:
    """Build an untrained model from its spec."""
    arch = spec["arch"]
    kwargs: dict[str, Any] = {"weights": None, "num_classes": int(spec["num_classes"])}
    if "width" in spec:
        kwargs["width_mult"] = float(spec["width"])
    if arch not in classification_archs():
        close = difflib.get_close_matches(arch, classification_archs(), n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "pass a torchvision classification model name such as resnet18"
        raise EdgekitError(f"unknown architecture '{arch}'", hint)
    return get_model(arch, **kwargs)


def student_spec(arch: str, width: float, num_classes: int) -> dict[str, Any]:
    if arch not in STUDENTS:
        raise EdgekitError(f"unknown student '{arch}'", f"choose one of {', '.join(STUDENTS)}")
    return {"arch": arch, "width": width, "num_classes": num_classes}
