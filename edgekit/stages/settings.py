"""The settings of each stage, one frozen dataclass a stage: what a stage may read, and its fingerprint.

The command line and ``--config`` files keep one flat set of keys (``edgekit.config.Settings``). Before a
stage runs, its context swaps them for the stage's own dataclass (``StageContext.for_stage``), so a stage,
and every task method it calls, can read only the settings listed here: reading another raises
``AttributeError`` in the first test that runs the stage.

A stage's fingerprint is its dataclass, less the fields marked ``NOT_FINGERPRINTED``: settings that change how
a stage runs but not what it writes (threads for training, a cache folder), or that an input already pins
(the data's identity, an earlier stage's folder digest). Each such field says which.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from edgekit.config import Settings, method_strategy
from edgekit.tasks import get_task


def not_fingerprinted(why: str) -> Any:
    """A field the stage reads that leaves its output unchanged, or that an input of the stage already pins."""
    return field(metadata={"fingerprint": False, "why": why})


@dataclass(frozen=True)
class DataSettings:
    """Which images, split how, prepared how: every stage reads the data."""

    task: str
    data: str | None
    images: str | None
    size: int
    seed: int  # also splits detection data
    mean: list[float]
    std: list[float]
    skip_bad_images: bool = not_fingerprinted("the data's identity (an input) lists the images read")
    size_reason: str = not_fingerprinted("why the size was chosen from the data; the size itself is fingerprinted")

    stage: ClassVar[str] = ""

    def fingerprint(self) -> dict[str, Any]:
        """The settings the stage's output depends on, less those its task never reads."""
        ignored = get_task(self.task).ignored_keys
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.metadata.get("fingerprint", True) and f.name not in ignored}


@dataclass(frozen=True)
class TrainingSettings(DataSettings):
    """What every training stage shares: batches, augmentation, where it trains."""

    batch_size: int
    hflip: bool
    train_device: str = not_fingerprinted("CPU or GPU changes speed, not the recipe")
    soft_label_cache: str = not_fingerprinted("a cache of the teacher's outputs; a hit gives the same values")
    soft_label_cache_mb: int = not_fingerprinted("a cache that would grow beyond it is not used; same values")


@dataclass(frozen=True)
class TeacherSettings(TrainingSettings):
    teacher: str | None  # its content is an input of the stage; the path is part of the recipe as before
    teacher_arch: str
    teacher_epochs: int
    teacher_lr: float
    pretrained: str | None  # torchvision weights the trained teacher starts from
    # what else decides the teacher, fingerprinted through ``source`` below: an ensemble's members, or the
    # student's architecture for self-distillation (its first generation is the teacher)
    method: str = not_fingerprinted("only its strategy (ensemble, self) matters: see source()")
    extra_teachers: list[str] = not_fingerprinted("in source() for an ensemble")
    teacher_weights: list[float] = not_fingerprinted("in source() for an ensemble")
    ensemble_size: int = not_fingerprinted("in source() for an ensemble")
    student: str = not_fingerprinted("in source() for self-distillation")
    width: float = not_fingerprinted("in source() for self-distillation")

    stage: ClassVar[str] = "teacher"

    def source(self) -> dict[str, Any]:
        strategy = method_strategy(self.method)
        if strategy == "ensemble":
            count = None if self.teacher else self.ensemble_size
            return {"ensemble": {"extra_teachers": self.extra_teachers, "trained": count,
                                 "weights": self.teacher_weights}}
        if strategy == "self":
            return {"self": {"student": self.student, "width": self.width}}
        return {}

    def fingerprint(self) -> dict[str, Any]:
        return {**super().fingerprint(), **self.source()}


@dataclass(frozen=True)
class DistillSettings(TrainingSettings):
    student: str
    width: float
    temperature: float
    alpha: float
    distill_epochs: int
    distill_epochs_reason: str = not_fingerprinted("why the epochs were chosen from the data; the epochs are fingerprinted")
    distill_lr: float
    method: str
    teacher_layers: list[str]
    student_layers: list[str]
    assistants: int
    generations: int
    pretrained: str | None  # torchvision weights the student starts from
    student_weights: str | None  # the user's file the student starts from (its content is an input of the stage)

    stage: ClassVar[str] = "distill"


@dataclass(frozen=True)
class QuantizeSettings(TrainingSettings):
    temperature: float
    alpha: float
    quant_method: str
    qat_epochs: int
    qat_lr: float
    calibration_batches: int
    calibration_images: int | None
    weight_range: str
    method: str = not_fingerprinted("QAT learns by kd whatever --method is; the report names it")

    stage: ClassVar[str] = "quantize"


@dataclass(frozen=True)
class ExportSettings(DataSettings):
    io: str
    # the accuracy goal of the INT8 files (edgekit/widen/): points below the FP32 student, and the run's
    # ``accuracy`` budget (flag, config or target profile); layers are kept float until the files meet it
    max_drop: float | None = None
    accuracy_budget: float | None = None
    stage: ClassVar[str] = "export"


@dataclass(frozen=True)
class BenchmarkSettings(DataSettings):
    target: str
    threads: int | None
    latency_runs: int
    latency_seconds: float
    # the report (``stages/report.py``) runs after the stage, every time, and reads these as well
    budget: list[str] = not_fingerprinted("budgets are checked in the report, which runs every time")
    device: str | None = not_fingerprinted("the device is measured in the report, which runs every time")
    record: dict[str, Any] = not_fingerprinted("every setting of the run, written to measurements.json")

    stage: ClassVar[str] = "benchmark"


STAGE_SETTINGS: dict[str, type[DataSettings]] = {
    cls.stage: cls for cls in (TeacherSettings, DistillSettings, QuantizeSettings, ExportSettings, BenchmarkSettings)}


def for_stage(settings: Settings | DataSettings, stage: str) -> DataSettings:
    """The stage's own settings from the run's (unchanged when they already are the stage's)."""
    cls = STAGE_SETTINGS[stage]
    if type(settings) is cls:
        return settings
    if not isinstance(settings, Settings):
        raise TypeError(f"the {stage} stage needs the run's Settings, not {type(settings).__name__}")
    values = {f.name: getattr(settings, f.name) for f in fields(cls) if f.name not in ("record", "accuracy_budget")}
    if cls is ExportSettings:
        from edgekit.config import run_budgets

        values["accuracy_budget"] = run_budgets(settings).get("accuracy")
    if cls is BenchmarkSettings:
        values["record"] = dataclasses.asdict(settings)
    return cls(**values)

# Settings no stage reads: they decide how the run starts, before any stage.
RUN_LEVEL = {"nproc": "the number of training processes, started by the CLI (torchrun) before any stage",
             "latency_margin": "with candidates: how --student auto chooses; the stages read the chosen student",
             "candidates": "with latency_margin: what --student auto chooses from; the stages read the choice"}
