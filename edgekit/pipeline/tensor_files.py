"""Tensors on disk for checkpoints and caches: safetensors, written so a full disk says so, with module versions."""

from __future__ import annotations

import errno
from collections import OrderedDict
from pathlib import Path

import torch
from safetensors.torch import save_file


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
