"""Which tensor of an exported file is a given layer: its int8 weights equal (INT8 files), or its float weights
point the same way channel by channel (FP32 files, whose converter may have folded batch norm into them)."""

from __future__ import annotations

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.layers.torch_points import Layer

MIN_COSINE = 0.99
MAX_CHANGED = 0.01


def _channel_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.reshape(a.shape[0], -1).astype(np.float64), b.reshape(b.shape[0], -1).astype(np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    live = norms > 0
    if not live.any():
        return 0.0
    return float(np.mean(np.abs((a * b).sum(axis=1)[live] / norms[live])))


def _same_int8(weight: np.ndarray, candidates: dict[str, np.ndarray]) -> str | None:
    """The candidate holding these int8 weights. A converter may move a -128 to -127 (TFLite's weights are
    symmetric), so off-by-one values in under 1 % of the weights still match; the closest candidate wins."""
    best, fewest = None, MAX_CHANGED
    for key, w in candidates.items():
        diff = np.abs(w.astype(np.int16) - weight.astype(np.int16))
        changed = float((diff > 0).mean())
        if diff.max() <= 1 and changed < fewest:
            best, fewest = key, changed
            if changed == 0.0:
                break
    return best


def match_layers(layers: list[Layer], weights: dict[str, np.ndarray], file: str) -> dict[str, str]:
    """module path -> the file's key for it. ``weights`` maps a key of the file to its weight in PyTorch's layout
    (OIHW, or (out, in)); int8 weights must be equal, float ones match the FP32 student's by channel cosine."""
    found: dict[str, str] = {}
    free = dict(weights)
    for layer in layers:
        same_shape = {k: w for k, w in free.items() if w.shape == layer.int8_weight.shape}
        key = _same_int8(layer.int8_weight, {k: w for k, w in same_shape.items() if w.dtype == np.int8})
        if key is None and layer.fp32_weight is not None:
            scored = [(_channel_cosine(w, layer.fp32_weight), k) for k, w in same_shape.items() if w.dtype != np.int8]
            best = max(scored, default=(0.0, None))
            key = best[1] if best[0] >= MIN_COSINE else None
        if key is None:
            raise EdgekitError(f"{file}: no tensor holds the weights of layer {layer.path}",
                               "was the file exported from this run? rerun `edgekit export --force`")
        found[layer.path] = key
        del free[key]
    return found
