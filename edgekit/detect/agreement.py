"""Agreement of a detection artifact with its PyTorch counterpart: do they report the same objects?

At the app's thresholds (score 0.25, IoU 0.5 for NMS), each artifact detection is matched greedily, best
score first, to an unmatched reference detection of the same class with IoU >= 0.5. Agreement is the F1
of that matching: 2 * matched / (artifact detections + reference detections), 1.0 when both are empty.
"""

from __future__ import annotations

from typing import Any

import numpy as np

MATCH_IOU = 0.5


def _iou(box: list[float], others: np.ndarray) -> np.ndarray:
    x0 = np.maximum(box[0], others[:, 0])
    y0 = np.maximum(box[1], others[:, 1])
    x1 = np.minimum(box[2], others[:, 2])
    y1 = np.minimum(box[3], others[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    return inter / (area + (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1]) - inter + 1e-9)


def matched(found: list[dict[str, Any]], reference: list[dict[str, Any]], iou: float = MATCH_IOU) -> int:
    """How many of ``found`` match a distinct ``reference`` detection (same class, IoU >= ``iou``)."""
    if not found or not reference:
        return 0
    ref_boxes = np.array([r["box"] for r in reference], dtype=np.float64)
    ref_labels = np.array([r["label"] for r in reference])
    free = np.ones(len(reference), dtype=bool)
    hits = 0
    for d in sorted(found, key=lambda d: -d["score"]):
        overlap = np.where(free & (ref_labels == d["label"]), _iou(d["box"], ref_boxes), -1.0)
        best = int(overlap.argmax())
        if overlap[best] >= iou:
            free[best] = False
            hits += 1
    return hits


def detection_agreement(found: list[list[dict[str, Any]]], reference: list[list[dict[str, Any]]]) -> float:
    """F1 of matching an artifact's detections to the reference's, over all images."""
    total = sum(len(f) + len(r) for f, r in zip(found, reference))
    if total == 0:
        return 1.0
    return 2 * sum(matched(f, r) for f, r in zip(found, reference)) / total
