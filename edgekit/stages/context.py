"""What every stage function receives: its settings, the task, the run folder, and how to report.

The chain builds one context from the run's settings; each stage works on ``ctx.for_stage(name)``, whose
``settings`` are the stage's own dataclass (stages/settings.py)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from edgekit.config import Settings
from edgekit.data.preprocess import PreprocessSpec, preprocess_spec
from edgekit.stages.settings import DataSettings, for_stage
from edgekit.tasks import get_task
from edgekit.tasks.base import Task, TaskData


@dataclass
class StageContext:
    settings: Settings | DataSettings  # the run's, or (inside a stage) the stage's
    out: Path
    force: bool = False
    console: Console = field(default_factory=lambda: Console(stderr=True, soft_wrap=True))

    def for_stage(self, stage: str) -> StageContext:
        """This context with the stage's own settings in place of the run's."""
        return dataclasses.replace(self, settings=for_stage(self.settings, stage))

    @property
    def task(self) -> Task:
        return get_task(self.settings.task)

    @property
    def data(self) -> TaskData:
        """The task's data, decoded once per process (every stage of one ``compress`` shares the arrays)."""
        return self.task.load_data(self.settings)

    @property
    def spec(self) -> PreprocessSpec:
        return preprocess_spec(self.settings, self.task.resize_mode)

    def images(self, split: str) -> torch.Tensor:
        return self.data.images(split, self.spec)

    def targets(self, split: str) -> Any:
        return self.task.targets(self.data, split)

    def split(self, name: str) -> tuple[torch.Tensor, Any]:
        """A split's preprocessed images and its targets."""
        return self.images(name), self.targets(name)

    def eval_split(self) -> tuple[torch.Tensor, Any]:
        return self.split(self.data.eval_split)

    def eval_images(self) -> torch.Tensor:
        return self.images(self.data.eval_split)
