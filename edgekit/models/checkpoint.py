"""Our own weights on disk: safetensors plus a JSON side file describing how to rebuild the model."""

from __future__ import annotations

import errno
import json
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from edgekit.pipeline.atomic import write_json_atomic

WEIGHTS = "model.safetensors"
SPEC = "model.json"


def write_safetensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """safetensors' save_file, with a full disk reported as the OSError it is (safetensors wraps it in its own error)."""
    try:
        save_file({k: v.detach().contiguous().clone() for k, v in tensors.items()}, str(path))
    except Exception as exc:
        if isinstance(exc, OSError):
            raise
        if "StorageFull" in str(exc) or "code: 28" in str(exc):
            raise OSError(errno.ENOSPC, "No space left on device", str(path)) from None
        raise


def with_module_versions(state: dict[str, torch.Tensor], model: torch.nn.Module) -> OrderedDict:
    """``state`` with the module versions a state dict carries beside its tensors (``_metadata``), from ``model``.

    safetensors and our checkpoints keep tensors only; without the versions torchao takes each observer's
    state for an old one and resets its ``eps`` (2**-12 in QAT) to float32's, which changes the INT8 scales
    (a rebuilt QAT graph, a resumed QAT run).
    """
    state = OrderedDict(state)
    state._metadata = getattr(model.state_dict(), "_metadata", None)  # type: ignore[attr-defined]
    return state


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
