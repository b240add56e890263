"""The identity of a model and of tensors, as one hex digest (what the soft-label cache keys its files by)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch


def tensor_digest(*tensors: torch.Tensor) -> str:
    h = hashlib.sha256()
    for t in tensors:
        t = t.detach().contiguous().cpu()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def model_digest(model: torch.nn.Module) -> str:
    """Identity of a teacher: its class and every parameter and buffer (an ONNX teacher: its file; an
    ensemble: its members and weights)."""
    if hasattr(model, "digest"):
        return model.digest()
    path = getattr(model, "source_path", None)
    if path is not None:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    state = model.state_dict()
    return tensor_digest(*[state[k] for k in sorted(state)]) + type(model).__name__
