"""Detection data in memory: images at the model's input size, boxes in those pixels, labels, class names."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from edgekit.data.preprocess import PreprocessSpec
from edgekit.detect.scenes import CLASSES, SPLITS, make_scene, split_seed


@dataclass
class DetectionSplit:
    images: np.ndarray                     # N x S x S x 3 uint8, already at the input size
    boxes: list[np.ndarray]                # per image [n, 4] xyxy in input pixels
    labels: list[np.ndarray]               # per image [n]
    original_sizes: list[tuple[int, int]] = field(default_factory=list)  # (height, width) before resizing

    def __len__(self) -> int:
        return len(self.images)


@dataclass
class DetectionData:
    classes: list[str]
    splits: dict[str, DetectionSplit]
    source: str
    size: int
    skipped: list[str] = field(default_factory=list)  # unreadable image files left out (--skip-bad-images)
    identity: str = ""  # content identity for fingerprints (set by detect/loading.py)

    @property
    def eval_split(self) -> str:
        return "test" if "test" in self.splits else "val"

    def images(self, split: str, spec: PreprocessSpec) -> torch.Tensor:
        return spec.normalize(self.splits[split].images)

    def counts(self) -> dict[str, int]:
        return {name: len(s) for name, s in self.splits.items()}


def builtin_scenes(size: int = 96, seed: int = 0, splits: dict[str, int] | None = None) -> DetectionData:
    """The generated shapes scenes; the same seed always gives the same images."""
    out = {}
    for split, count in (splits or SPLITS).items():
        scenes = [make_scene(split_seed(split, i, seed), size) for i in range(count)]
        out[split] = DetectionSplit(np.stack([s.image for s in scenes]), [s.boxes for s in scenes],
                                    [s.labels for s in scenes], [(size, size)] * count)
    return DetectionData(list(CLASSES), out, f"built-in scenes (seed {seed})", size)
