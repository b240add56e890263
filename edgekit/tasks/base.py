"""What a task (classification, detection) supplies to the one chain of stages.

The five stages (``edgekit/stages``) hold the flow every task shares: fingerprints, the teacher, the
student, INT8, the files, the measurements. They ask the task for everything that differs: the data,
the models, the losses and the training step, the metric and its name, the parity measure, the files'
I/O description and how an app reads their outputs. Nothing outside ``edgekit/tasks`` branches on the
task; a new task is one subclass and one entry in ``edgekit/tasks/__init__.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

if TYPE_CHECKING:
    import torch

    from edgekit.choose.candidates import ChoiceInputs
    from edgekit.config import Settings
    from edgekit.data.preprocess import PreprocessSpec
    from edgekit.stages.context import StageContext

Outputs = dict[str, np.ndarray]  # a model's eval-split outputs by name (logits; or scores and boxes)


@dataclass(frozen=True)
class Metric:
    """The headline number of a task and how reports name it."""

    key: str                      # the key in a stage's result (accuracy, map50)
    name: str                     # how reports write it (accuracy, mAP50)
    also: tuple[str, ...] = ()    # further keys reported beside it (map50_95)
    agreement: str = "top-1 agreement with the PyTorch model"
    names: dict[str, str] = field(default_factory=dict)  # display names of the further keys


class TaskData(Protocol):
    """A task's data in memory: images at the input size, targets, class names, where it came from."""

    classes: list[str]
    source: str
    identity: str
    skipped: list[str]

    @property
    def eval_split(self) -> str: ...

    def counts(self) -> dict[str, int]: ...

    def images(self, split: str, spec: PreprocessSpec) -> torch.Tensor: ...


@dataclass
class Trained:
    """A model one training loop produced, and what the stage records about it."""

    model: torch.nn.Module
    history: list[dict[str, float]]
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. epoch timings, soft-label cache use


class Task(ABC):
    name: ClassVar[str]
    metric: ClassVar[Metric]
    defaults: ClassVar[dict[str, Any]] = {}       # Settings defaults that differ for this task
    ignored_keys: ClassVar[frozenset[str]] = frozenset()  # settings this task never reads: kept out of fingerprints
    output_names: ClassVar[tuple[str, ...]]       # the files' outputs, in order; the first holds the class scores
    output_descriptions: ClassVar[dict[str, str]]  # what each output holds, for the files' standard metadata
    model_kind: ClassVar[str]                     # "image classifier", ...: the files' metadata name
    alpha_convention: ClassVar[str]               # what --alpha weighs, as the report says it
    tunable: ClassVar[bool] = False               # `edgekit tune` can search its distillation methods
    resize_mode: ClassVar[str] = "stretch"        # how images reach the input size: stretch, or letterbox
    # appended to the training stages' versions: a change to one task's training recipe reruns that task's stages
    training_version: ClassVar[str] = ""
    parity_gate: ClassVar[float]                  # the agreement a file needs to be recommended for deployment
    # ONNX files a teacher stage may keep as the teacher itself (read for the teacher's graph, not re-exported)
    teacher_onnx_files: ClassVar[tuple[str, ...]] = ()

    # --- checks and data ------------------------------------------------------------------------------
    @abstractmethod
    def quick_check(self, settings: Settings, stages: list[str]) -> None:
        """What can be checked without torch or decoding: the data's kind, names of architectures."""

    def validate(self, settings: Settings) -> None:
        """Settings this task cannot take (one-line error)."""

    def size_from_data(self, settings: Settings) -> tuple[int, str] | None:
        """The input size and why, when the task chooses it from the data (no --size given); None keeps the default."""
        return None

    def distill_epochs_from_data(self, settings: Settings) -> tuple[int, str] | None:
        """The student's epochs and why, when the task chooses them from the data (no epoch count given); None
        keeps the default."""
        return None

    @abstractmethod
    def load_data(self, settings: Settings) -> TaskData:
        """Decode the data (once per process); bad files fail here with a one-line error."""

    @abstractmethod
    def targets(self, data: TaskData, split: str) -> Any:
        """What the losses compare with: labels, or boxes and labels per image."""

    @abstractmethod
    def check_models(self, ctx: StageContext, stages: list[str]) -> None:
        """Preflight checks that need torch but no training: model names, decoding the data (every file), the
        teacher file read and matched to the classes. Cheap checks first."""

    # --- models ---------------------------------------------------------------------------------------
    @abstractmethod
    def train_teacher(self, ctx: StageContext, folder: Path, seed: int, label: str) -> Trained:
        """A teacher trained from the labels and saved into ``folder``; ``extra`` holds its ``source`` (a phrase
        saying what it is) and ``arch``."""

    @abstractmethod
    def load_user_teacher(self, ctx: StageContext, path: Path, folder: Path) -> Trained:
        """The user's teacher file, checked and kept in ``folder``; ``extra`` as for ``train_teacher``."""

    @abstractmethod
    def load_teacher(self, folder: Path) -> torch.nn.Module:
        """A teacher (or guide) a stage folder holds, frozen."""

    @abstractmethod
    def load_student(self, folder: Path) -> torch.nn.Module:
        """The student a stage folder holds, in eval mode."""

    @abstractmethod
    def save_model(self, model: torch.nn.Module, folder: Path, spec: dict[str, Any]) -> None: ...

    @abstractmethod
    def describe(self, model: torch.nn.Module, spec: dict[str, Any] | None = None) -> dict[str, Any]:
        """``params`` of a model; given the spec it was built from (a student), also ``arch`` and ``width``."""

    @abstractmethod
    def student_chain(self, ctx: StageContext, teacher_params: int) -> list[tuple[str, dict[str, Any]]]:
        """(loop label, model spec) of every model the distill stage trains, in order; the student last."""

    @abstractmethod
    def choice_inputs(self, settings: Settings, auto: bool) -> ChoiceInputs:
        """The student candidates for ``--student auto`` (or, not ``auto``, the one given) and how to build each
        untrained, for their cost on the target before training (stages/student_choice.py)."""

    def trained_teacher(self, settings: Settings) -> str:
        """The teacher the teacher stage trains when no file is given, in words (``--dry-run``)."""
        return settings.teacher_arch

    def init_student(self, ctx: StageContext, model: torch.nn.Module, spec: dict[str, Any]) -> str | None:
        """Give the final student its starting weights (--pretrained, --student-weights); the line to log, or None
        when it starts from random weights."""
        return None

    @abstractmethod
    def build_model(self, spec: dict[str, Any]) -> torch.nn.Module: ...

    def teacher_layers(self, settings: Settings) -> list[str]:
        """The teacher's layers feature-based methods read."""
        return []

    # --- training -------------------------------------------------------------------------------------
    @abstractmethod
    def distill(self, ctx: StageContext, model: torch.nn.Module, teacher: torch.nn.Module | None,
                teacher_layers: list[str], label: str) -> Trained:
        """Train ``model`` from the teacher (and the labels) with the chosen method."""

    @abstractmethod
    def train_qat(self, ctx: StageContext, prepared: torch.nn.Module, teacher: torch.nn.Module | None) -> list:
        """Quantization-aware training of a prepared PT2E graph, guided by the teacher; returns the history."""

    @abstractmethod
    def qat_loss(self, settings: Settings) -> str:
        """Which loss QAT trains with, and why, as the report says it."""

    def calibration_labels(self, ctx: StageContext) -> torch.Tensor | None:
        """Labels of the training split, so the calibration record can count each class (None: not counted)."""
        return None

    # --- outputs and the metric ---------------------------------------------------------------------------
    @abstractmethod
    def outputs(self, model: Any, x: torch.Tensor) -> Outputs:
        """The model's eval outputs for a batch of preprocessed images, as the files give them."""

    @abstractmethod
    def score(self, data: TaskData, split: str, outputs: Outputs) -> dict[str, float]:
        """The metric (``metric.key`` and ``metric.also``) of the outputs on a split."""

    @abstractmethod
    def agreement(self, data: TaskData, outputs: Outputs, reference: Outputs) -> float:
        """How far a file's outputs agree with its PyTorch model's (1.0: the same answers)."""

    def format_scores(self, scores: dict[str, float]) -> str:
        names = {self.metric.key: self.metric.name, **self.metric.names}
        return ", ".join(f"{names.get(k, k)} {scores[k]:.4f}" for k in (self.metric.key, *self.metric.also))

    # --- files ----------------------------------------------------------------------------------------
    @abstractmethod
    def io_entry(self, path: Path, classes: list[str]) -> dict[str, Any]:
        """The file's entry in preprocess.json: input name, layout, dtypes, quantization, outputs."""

    @abstractmethod
    def parity(self, outputs: Outputs, reference: Outputs) -> tuple[dict[str, Any], str]:
        """The export stage's check of a file against its PyTorch model: numbers for the record, and a phrase."""

    def document_extra(self, classes: list[str]) -> dict[str, Any]:
        """What preprocess.json (and each file's embedded copy) says beyond the recipe, e.g. how to decode."""
        return {}

    @abstractmethod
    def app_result(self, outputs: Outputs, classes: list[str], image_size: tuple[int, int],
                   input_size: tuple[int, int], options: dict[str, Any]) -> dict[str, Any]:
        """What ``edgekit predict`` reports for one image from one file's outputs (batch of one), decoded the
        way an app would: top classes, or boxes in the original image's pixels."""

    @abstractmethod
    def class_count(self, outputs: Outputs) -> int:
        """How many classes one file's outputs score (checked against the class names an app is given)."""

    def report_fields(self) -> dict[str, Any]:
        """What measurements.json and report.json say about the task beyond the shared fields."""
        return {}

    @abstractmethod
    def useful_level(self, num_classes: int) -> dict[str, Any]:
        """The level under which a model learned too little to deploy (bench/learned_check.py): ``floor`` (the
        metric), ``floor_means`` (that floor in words) and ``of_teacher`` (the share of the teacher's metric a
        student must keep)."""
