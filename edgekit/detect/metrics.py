"""COCO-style mAP with pycocotools (the reference evaluator), for any source of detections."""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np


def coco_map(ground_truth: list[tuple[np.ndarray, np.ndarray]], detections: list[list[dict[str, Any]]],
             num_classes: int, image_size: tuple[int, int] | list[tuple[int, int]]) -> dict[str, float]:
    """``ground_truth``: per image (boxes [N, 4] xyxy, labels [N]); ``detections``: per image, dicts with
    ``label``, ``score``, ``box`` (xyxy, same pixels). Returns ``map50`` and ``map50_95``."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    sizes = image_size if isinstance(image_size, list) else [image_size] * len(ground_truth)
    images, annotations, results = [], [], []
    for i, ((boxes, labels), (h, w)) in enumerate(zip(ground_truth, sizes)):
        images.append({"id": i, "height": int(h), "width": int(w)})
        for box, label in zip(boxes, labels):
            x0, y0, x1, y1 = (float(v) for v in box)
            annotations.append({"id": len(annotations) + 1, "image_id": i, "category_id": int(label),
                                "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0), "iscrowd": 0})
        for d in detections[i]:
            x0, y0, x1, y1 = d["box"]
            results.append({"image_id": i, "category_id": int(d["label"]), "bbox": [x0, y0, x1 - x0, y1 - y0],
                            "score": float(d["score"])})
    if not annotations:
        return {"map50": 0.0, "map50_95": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": annotations,
                      "categories": [{"id": c, "name": str(c)} for c in range(num_classes)]}
        gt.createIndex()
        if not results:
            return {"map50": 0.0, "map50_95": 0.0}
        dt = gt.loadRes(results)
        evaluator = COCOeval(gt, dt, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = evaluator.stats
    return {"map50_95": float(max(stats[0], 0.0)), "map50": float(max(stats[1], 0.0))}
