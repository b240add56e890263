"""mAP of a PyTorch detector on one split, and saving/loading TinyDetectors in stage folders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgekit.detect.data import DetectionData
from edgekit.detect.metrics import coco_map
from edgekit.detect.tiny_detector import DetectorSpec, TinyDetector
from edgekit.detect.torchvision_teacher import FCOSSpec, FCOSTeacher
from edgekit.detect.train import detections, predict_raw
from edgekit.detect.yolo_teacher import KIND as YOLO_KIND
from edgekit.detect.yolo_teacher import YoloGridTeacher, load_yolo_teacher
from edgekit.models.checkpoint import load_state, read_spec, save_weights


def raw_outputs(model: torch.nn.Module, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Scores [N, A, C] and box distances [N, A, 4] in eval mode (the model's own mode restored)."""
    plain = isinstance(model, (TinyDetector, FCOSTeacher))  # an exported PT2E graph has no train()/eval()
    was_training = model.training
    if plain:
        model.eval()
    scores, boxes = predict_raw(model, x)
    if plain:
        model.train(was_training)
    return scores, boxes


def map_from_raw(data: DetectionData, split: str, scores: np.ndarray, boxes: np.ndarray) -> dict[str, float]:
    """COCO mAP50 and mAP50-95 of location-major raw outputs, decoded by the shared post-processing."""
    part = data.splits[split]
    return coco_map(list(zip(part.boxes, part.labels)), detections(scores, boxes, data.size), len(data.classes),
                    (data.size, data.size))


def map_of(model: torch.nn.Module, data: DetectionData, x: torch.Tensor, split: str) -> dict[str, float]:
    return map_from_raw(data, split, *raw_outputs(model, x))


def save_detector(model: TinyDetector | FCOSTeacher, folder: Path) -> None:
    kind = "torchvision_fcos" if isinstance(model, FCOSTeacher) else "tiny_detector"
    save_weights(model, folder, {"kind": kind, **model.spec.as_dict()})


def load_detector(folder: Path) -> TinyDetector | FCOSTeacher | YoloGridTeacher:
    spec = read_spec(folder)
    if spec["kind"] == YOLO_KIND:
        return load_yolo_teacher(folder, spec)
    fields = {k: v for k, v in spec.items() if k != "kind"}
    model = FCOSTeacher(FCOSSpec(**fields)) if spec["kind"] == "torchvision_fcos" else TinyDetector(DetectorSpec(**fields))
    model.load_state_dict(load_state(folder))
    return model.eval()


def describe(model: TinyDetector | FCOSTeacher | YoloGridTeacher) -> str:
    if isinstance(model, YoloGridTeacher):
        layout = "YOLOv5" if model.spec.layout == "v5" else "YOLOv8/11"
        return f"{layout} ONNX {model.spec.input_size[1]}x{model.spec.input_size[0]}"
    if isinstance(model, FCOSTeacher):
        return f"torchvision {model.spec.arch}"
    return f"TinyDetector x{model.spec.width}"


def spec_summary(model: TinyDetector | FCOSTeacher | YoloGridTeacher) -> dict[str, Any]:
    if isinstance(model, YoloGridTeacher):
        return {"kind": YOLO_KIND, **model.spec.as_dict(), "params": model.parameter_count}
    return {**model.spec.as_dict(), "params": sum(p.numel() for p in model.parameters())}
