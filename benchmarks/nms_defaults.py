"""Do the app's NMS defaults remove duplicate boxes without costing mAP? (issue 22, item 2)

For a finished detection run: the distilled student's outputs on the evaluation split (``distill/
eval_outputs.safetensors``, the FP32 PyTorch model the files are checked against) decoded as an app decodes them
(one box per location, of its best class; class-wise greedy NMS) at several NMS IoU thresholds, and at the app's
score threshold; per setting: pycocotools' mAP50 of those detections, precision and recall at IoU 0.5, and the
duplicates (extra detections of the same class on an object already found, IoU >= 0.5) per 100 objects. The
mAP of the run's own evaluation (score 0.001, every class of a location) is the reference line.

    python benchmarks/nms_defaults.py --run RUN_DIR --name aquarium

Writes benchmarks/results/nms_defaults_<name>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from torchvision.ops import box_iou

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
IOUS = (0.3, 0.45, 0.5, 0.6, 0.7)


def match_counts(gt: list[tuple[np.ndarray, np.ndarray]], found: list[list[dict]]) -> dict[str, float]:
    """Greedy matching best-first at IoU 0.5, same class: true positives, duplicates (a detection whose best
    object is already taken by a better one of its class), other false positives, and the object count."""
    tp = dup = fp = objects = 0
    for (boxes, labels), dets in zip(gt, found):
        objects += len(boxes)
        taken = np.zeros(len(boxes), dtype=bool)
        for d in sorted(dets, key=lambda d: -d["score"]):
            same = labels == d["label"]
            if not same.any():
                fp += 1
                continue
            overlap = box_iou(torch.tensor([d["box"]]), torch.as_tensor(boxes)).numpy()[0] * same
            free = np.where(taken, 0.0, overlap)
            if free.max() >= 0.5:
                taken[int(free.argmax())] = True
                tp += 1
            elif overlap.max() >= 0.5:
                dup += 1
            else:
                fp += 1
    found_count = tp + dup + fp
    return {"objects": objects, "detections": found_count, "precision": tp / max(found_count, 1),
            "recall": tp / max(objects, 1), "duplicates_per_100_objects": 100 * dup / max(objects, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--name", required=True)
    args = parser.parse_args()
    from edgekit.config import recorded_settings
    from edgekit.detect.loading import load_detection
    from edgekit.detect.metrics import coco_map
    from edgekit.detect.postprocess import DEFAULT_IOU, DEFAULT_SCORE, decode
    from edgekit.detect.tiny_detector import STRIDES
    from edgekit.models.predictions import load_outputs

    s = recorded_settings(args.run)
    data = load_detection(s.get("data"), s.get("images"), int(s["size"]), int(s.get("seed", 0)))[0]
    part = data.splits[data.eval_split]
    gt = list(zip(part.boxes, part.labels))
    out = load_outputs(args.run / "distill")
    scores, ltrb = out["scores"].transpose(0, 2, 1), out["boxes"].transpose(0, 2, 1)

    def detect(score: float, iou: float, multi: bool) -> list[list[dict]]:
        return [decode(sc, bx, data.size, list(STRIDES), score, iou, multi_label=multi) for sc, bx in zip(scores, ltrb)]

    classes = len(data.classes)
    reference = coco_map(gt, detect(0.001, DEFAULT_IOU, True), classes, (data.size, data.size))
    rows = []
    for iou in IOUS:
        found = detect(DEFAULT_SCORE, iou, False)
        rows.append({"iou": iou, **coco_map(gt, found, classes, (data.size, data.size)), **match_counts(gt, found)})
    result = {"command": f"python benchmarks/nms_defaults.py --run RUN --name {args.name}",
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "run": str(args.run),
              "data": data.source, "split": data.eval_split, "images": len(part), "size": data.size,
              "score_threshold": DEFAULT_SCORE, "default_iou": DEFAULT_IOU, "reference_eval": reference, "rows": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"nms_defaults_{args.name}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    lines = [f"# NMS defaults on {args.name}", "", f"Command: `{result['command']}`  ", f"Date: {result['date']}  ",
             f"Data: {data.source}, `{data.eval_split}` split ({len(part)} images at {data.size} px); the distilled "
             f"FP32 student's outputs; app decoding at score {DEFAULT_SCORE} (the default NMS IoU is {DEFAULT_IOU}).",
             "", f"Evaluation as the report measures it (score 0.001, every class of a location, IoU {DEFAULT_IOU}): "
             f"mAP50 {reference['map50']:.4f}, mAP50-95 {reference['map50_95']:.4f}.", "",
             "| NMS IoU | mAP50 of app detections | Precision | Recall | Duplicates / 100 objects | Detections |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['iou']} | {r['map50']:.4f} | {r['precision']:.3f} | {r['recall']:.3f} | "
              f"{r['duplicates_per_100_objects']:.2f} | {r['detections']} |" for r in rows]
    (RESULTS / f"nms_defaults_{args.name}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
