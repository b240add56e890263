"""What every detection stage receives: settings, run folder, console, and the data (decoded once)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from rich.console import Console

from edgekit.config import Settings
from edgekit.data.preprocess import PreprocessSpec
from edgekit.detect.data import DetectionData
from edgekit.detect.loading import load_detection


@dataclass
class DetectContext:
    settings: Settings
    out: Path
    force: bool = False
    console: Console = field(default_factory=lambda: Console(stderr=True, soft_wrap=True))

    def data(self) -> tuple[DetectionData, str]:
        s = self.settings
        return load_detection(s.data, s.images, s.size, s.seed, s.skip_bad_images)

    @property
    def spec(self) -> PreprocessSpec:
        s = self.settings
        return PreprocessSpec(size=(s.size, s.size), mean=tuple(s.mean), std=tuple(s.std))

    def images(self, split: str) -> torch.Tensor:
        return self.data()[0].tensors(split, self.spec)
