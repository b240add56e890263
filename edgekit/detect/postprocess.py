"""Decoding and NMS outside the integer graph, in numpy: the same code for every runtime and for apps.

The parameters travel in preprocess.json (``detection``): strides, output layout, score and IoU thresholds.
"""

from __future__ import annotations

from typing import Any

import numpy as np

DEFAULT_SCORE = 0.25
DEFAULT_IOU = 0.5
MAX_DETECTIONS = 100


def grid_np(size: int, strides: list[int]) -> tuple[np.ndarray, np.ndarray]:
    centres, all_strides = [], []
    for s in strides:
        n = -(-size // s)
        ys, xs = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        centres.append(np.stack([(xs.ravel() + 0.5) * s, (ys.ravel() + 0.5) * s], 1))
        all_strides.append(np.full(n * n, float(s)))
    return np.concatenate(centres).astype(np.float32), np.concatenate(all_strides).astype(np.float32)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best first."""
    order = np.argsort(-scores)
    keep = []
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    while order.size:
        i = order[0]
        keep.append(i)
        xx0 = np.maximum(boxes[i, 0], boxes[order[1:], 0])
        yy0 = np.maximum(boxes[i, 1], boxes[order[1:], 1])
        xx1 = np.minimum(boxes[i, 2], boxes[order[1:], 2])
        yy1 = np.minimum(boxes[i, 3], boxes[order[1:], 3])
        inter = np.clip(xx1 - xx0, 0, None) * np.clip(yy1 - yy0, 0, None)
        overlap = inter / (area[i] + area[order[1:]] - inter + 1e-9)
        order = order[1:][overlap <= iou]
    return np.array(keep, dtype=np.int64)


def decode(scores: np.ndarray, ltrb: np.ndarray, size: int, strides: list[int], score_threshold: float = DEFAULT_SCORE,
           iou: float = DEFAULT_IOU, max_detections: int = MAX_DETECTIONS) -> list[dict[str, Any]]:
    """One image's outputs ([A, C] scores, [A, 4] distances in stride units) -> detections in input pixels,
    class-wise NMS, best first: ``{"label": int, "score": float, "box": [x0, y0, x1, y1]}``."""
    centres, s = grid_np(size, strides)
    d = ltrb * s[:, None]
    boxes = np.stack([centres[:, 0] - d[:, 0], centres[:, 1] - d[:, 1], centres[:, 0] + d[:, 2], centres[:, 1] + d[:, 3]], 1)
    boxes = np.clip(boxes, 0, size)
    out = []
    for label in range(scores.shape[1]):
        mask = scores[:, label] >= score_threshold
        if not mask.any():
            continue
        b, sc = boxes[mask], scores[mask, label]
        for i in nms(b, sc, iou):
            out.append({"label": label, "score": float(sc[i]), "box": [float(v) for v in b[i]]})
    out.sort(key=lambda d: -d["score"])
    return out[:max_detections]
