"""What every stage function receives: the settings, the run folder, and how to report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from rich.console import Console

from edgekit.config import Settings
from edgekit.data.dataset import ImageData
from edgekit.data.loading import load_data, preprocess_spec
from edgekit.data.preprocess import PreprocessSpec


@dataclass
class StageContext:
    settings: Settings
    out: Path
    force: bool = False
    console: Console = field(default_factory=lambda: Console(stderr=True, soft_wrap=True))

    @property
    def data(self) -> ImageData:
        return load_data(self.settings)

    @property
    def spec(self) -> PreprocessSpec:
        return preprocess_spec(self.settings)

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        return self.data.tensors(name, self.spec)

    def eval_split(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.split(self.data.eval_split)
