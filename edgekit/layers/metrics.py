"""How far a layer's output in a file is from a reference: SQNR in dB and cosine similarity."""

from __future__ import annotations

import numpy as np

CAP_DB = 150.0  # float files match their reference to rounding: report those as "equal", not as 300 dB


def sqnr_db(reference: np.ndarray, value: np.ndarray) -> float:
    """10 log10(signal power / error power) over the whole batch."""
    ref = reference.astype(np.float64)
    noise = float(((ref - value.astype(np.float64)) ** 2).sum())
    signal = float((ref ** 2).sum())
    if noise == 0.0 or signal == 0.0:
        return CAP_DB if noise == 0.0 else -CAP_DB
    return float(min(CAP_DB, 10.0 * np.log10(signal / noise)))


def cosine(reference: np.ndarray, value: np.ndarray) -> float:
    """Mean over images of the cosine between the flattened outputs."""
    a = reference.reshape(len(reference), -1).astype(np.float64)
    b = value.reshape(len(value), -1).astype(np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    cos = np.where(norms > 0, (a * b).sum(axis=1) / np.where(norms > 0, norms, 1.0), 1.0)
    return float(cos.mean())
