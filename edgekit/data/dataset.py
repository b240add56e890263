"""An image classification data set held as resized 8-bit images, with its splits and class names."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from edgekit.data.preprocess import PreprocessSpec


@dataclass
class ImageData:
    classes: list[str]
    splits: dict[str, tuple[np.ndarray, np.ndarray]]  # name -> (uint8 N,H,W,3 ; int64 N)
    source: str  # human description: "built-in digits" or the directory
    identity: str  # content identity for fingerprints
    skipped: list[str] = field(default_factory=list)  # unreadable image files left out (--skip-bad-images)

    def tensors(self, split: str, spec: PreprocessSpec) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images(split, spec), self.labels(split)

    def images(self, split: str, spec: PreprocessSpec) -> torch.Tensor:
        return spec.normalize(self.splits[split][0])

    def labels(self, split: str) -> torch.Tensor:
        return torch.as_tensor(self.splits[split][1], dtype=torch.long)

    @property
    def eval_split(self) -> str:
        return "test" if "test" in self.splits else "val"

    def counts(self) -> dict[str, int]:
        return {name: int(len(labels)) for name, (_, labels) in self.splits.items()}
