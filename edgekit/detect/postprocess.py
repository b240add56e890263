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
           iou: float = DEFAULT_IOU, max_detections: int = MAX_DETECTIONS, multi_label: bool = False
           ) -> list[dict[str, Any]]:
    """One image's outputs ([A, C] scores, [A, 4] distances in stride units) -> detections in input pixels,
    class-wise NMS, best first: ``{"label": int, "score": float, "box": [x0, y0, x1, y1]}``.

    A location gives one box, of its best class (what an app wants: two classes scoring over the threshold at
    one location were two boxes on one object); ``multi_label`` keeps every class over the threshold, as mAP
    evaluation does (Ultralytics does the same: one label per box to predict, all labels to validate).

    Class-wise NMS runs as one greedy pass over every (location, class) candidate in descending score, boxes
    of different classes kept apart by a per-class offset, and stops at ``max_detections`` kept: the same
    result as NMS per class followed by the best ``max_detections``, but an untrained 80-class model at the
    mAP threshold (0.001) no longer runs a Python loop over tens of thousands of candidates."""
    centres, s = grid_np(size, strides)
    d = ltrb * s[:, None]
    boxes = np.stack([centres[:, 0] - d[:, 0], centres[:, 1] - d[:, 1], centres[:, 0] + d[:, 2], centres[:, 1] + d[:, 3]], 1)
    boxes = np.clip(boxes, 0, size)
    if multi_label:
        loc, label = np.nonzero(scores >= score_threshold)
    else:
        best = scores.argmax(1)
        loc = np.nonzero(scores[np.arange(len(scores)), best] >= score_threshold)[0]
        label = best[loc]
    if loc.size == 0:
        return []
    sc = scores[loc, label]
    order = np.argsort(-sc, kind="stable")
    loc, label, sc = loc[order], label[order], sc[order]
    cand = boxes[loc] + (label * (2.0 * size + 1.0))[:, None]  # classes never overlap
    area = (cand[:, 2] - cand[:, 0]) * (cand[:, 3] - cand[:, 1])
    alive = np.ones(len(sc), dtype=bool)
    out = []
    for i in range(len(sc)):
        if not alive[i]:
            continue
        out.append({"label": int(label[i]), "score": float(sc[i]), "box": [float(v) for v in boxes[loc[i]]]})
        if len(out) == max_detections:
            break
        rest = np.nonzero(alive[i + 1:])[0] + i + 1
        xx0 = np.maximum(cand[i, 0], cand[rest, 0])
        yy0 = np.maximum(cand[i, 1], cand[rest, 1])
        xx1 = np.minimum(cand[i, 2], cand[rest, 2])
        yy1 = np.minimum(cand[i, 3], cand[rest, 3])
        inter = np.clip(xx1 - xx0, 0, None) * np.clip(yy1 - yy0, 0, None)
        alive[rest[inter / (area[i] + area[rest] - inter + 1e-9) > iou]] = False
    return out
