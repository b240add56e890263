"""mAP of a PyTorch detector on one split, and saving/loading TinyDetectors in stage folders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from edgekit.detect.data import DetectionData
from edgekit.detect.metrics import coco_map
from edgekit.detect.tiny_detector import DetectorSpec, TinyDetector
from edgekit.detect.train import detections, predict_raw
from edgekit.models.checkpoint import load_state, read_spec, save_weights


def map_of(model: torch.nn.Module, data: DetectionData, x: torch.Tensor, split: str) -> dict[str, float]:
    plain = isinstance(model, TinyDetector)  # an exported PT2E graph has no train()/eval()
    was_training = model.training
    if plain:
        model.eval()
    scores, boxes = predict_raw(model, x)
    if plain:
        model.train(was_training)
    part = data.splits[split]
    return coco_map(list(zip(part.boxes, part.labels)), detections(scores, boxes, data.size), len(data.classes),
                    (data.size, data.size))


def save_detector(model: TinyDetector, folder: Path) -> None:
    save_weights(model, folder, {"kind": "tiny_detector", **model.spec.as_dict()})


def load_detector(folder: Path) -> TinyDetector:
    spec = read_spec(folder)
    model = TinyDetector(DetectorSpec(**{k: v for k, v in spec.items() if k != "kind"}))
    model.load_state_dict(load_state(folder))
    return model.eval()


def spec_summary(model: TinyDetector) -> dict[str, Any]:
    return {**model.spec.as_dict(), "params": sum(p.numel() for p in model.parameters())}
