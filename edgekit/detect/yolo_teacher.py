"""A YOLO ONNX export teaching a TinyDetector: the teacher stage keeps the file, distillation and QAT run it.

The teacher sees what the student sees: each training batch (letterboxed to the run's size S and augmented) is
taken back to pixels, scaled to the file's input (a square S view letterboxes into a square input by one scale,
so the geometry is Ultralytics' own letterbox of that view), run in a plain onnxruntime session, decoded, and
mapped onto the student's grid (yolo_onnx.to_student_grid: each cell the best prediction containing its centre
whose own centre is within the ground truth's CENTRE_RADIUS strides of it, so the teacher teaches the cells the
labels would; boxes in the student's ltrb encoding). Taught so for 20 epochs, a student reached val mAP50 0.070
on Aquarium against 0.054 from scratch (benchmarks/results/detect_kd_sweep_aquarium.md; with the radius, quality-
focal KD went from 0.008 to 0.018 at 10 epochs). It gives outputs only, so feature imitation is off with it.

Its mAP in the teacher stage is measured the same way, on the run's test images at S px: the predictions as the
student is taught them. A benchmark that wants the detector's own mAP at its own size runs Ultralytics' val.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgekit.detect.assign import CENTRE_RADIUS
from edgekit.detect.yolo_onnx import YoloOnnxTeacher, check_classes, read_yolo_spec, to_student_grid

FILE = "yolo.onnx"
KIND = "yolo_onnx"


@dataclass(frozen=True)
class YoloTeacherSpec:
    num_classes: int
    layout: str
    input_size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "input_size": list(self.input_size), "mean": list(self.mean), "std": list(self.std)}


def _parameter_count(path: Path) -> int:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return int(sum(np.prod(t.dims) for t in model.graph.initializer))


class YoloGridTeacher(torch.nn.Module):
    """Called as a TinyDetector is: ``forward`` gives sigmoid scores [N, C, A] and ltrb [N, 4, A] (channel-major),
    ``forward_train`` logits [N, A, C], ltrb [N, A, 4] and no features. ``mean``/``std`` undo the run's
    normalisation."""

    has_features = False

    def __init__(self, path: Path | str, mean: tuple[float, ...], std: tuple[float, ...],
                 threads: int | None = None, centre_radius: float | None = CENTRE_RADIUS) -> None:
        super().__init__()
        self.centre_radius = centre_radius
        self.path = Path(path)
        self.yolo = YoloOnnxTeacher(self.path, threads)
        y = self.yolo.spec
        self.spec = YoloTeacherSpec(y.num_classes, y.layout, y.input_size, tuple(mean), tuple(std))
        self.parameter_count = _parameter_count(self.path)
        self._mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self._std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)

    @torch.no_grad()
    def forward_train(self, x: torch.Tensor) -> dict[str, Any]:
        size = x.shape[-1]
        pixels = ((x.float().cpu() * self._std + self._mean).clamp(0, 1) * 255).permute(0, 2, 3, 1).numpy()
        logits, ltrb = zip(*(to_student_grid(boxes, scores, (size, size), size,
                                                             centre_radius=self.centre_radius)
                             for boxes, scores in self.yolo.predict(list(pixels))))
        return {"logits": torch.stack(logits).to(x.device), "boxes": torch.stack(ltrb).to(x.device), "features": None}

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.forward_train(x)
        return torch.sigmoid(out["logits"]).transpose(1, 2), out["boxes"].transpose(1, 2)


def check_yolo_teacher(path: Path, num_classes: int, names: list[str] | None = None) -> None:
    """The preflight: a known layout and the data's class count (one-line errors naming what was seen)."""
    check_classes(read_yolo_spec(path), num_classes, path, names)


def keep_yolo_teacher(path: Path, folder: Path, num_classes: int, mean: tuple[float, ...], std: tuple[float, ...]
                      ) -> YoloGridTeacher:
    """Copy the file into the teacher stage's folder (a later change to the user's file does not change a finished
    run; weights in external files go inside the copy) and open the copy."""
    from edgekit.models.checkpoint import SPEC
    from edgekit.models.onnx_teacher import copy_onnx_model
    from edgekit.pipeline.atomic import write_json_atomic

    copy_onnx_model(path, folder / FILE)  # external weights, if any, go inside the copy
    teacher = YoloGridTeacher(folder / FILE, mean, std)  # reads the layout (or refuses the file)
    check_classes(teacher.yolo.spec, num_classes, path)
    write_json_atomic(folder / SPEC, {"kind": KIND, **teacher.spec.as_dict(), "params": teacher.parameter_count})
    return teacher


def load_yolo_teacher(folder: Path, spec: dict[str, Any]) -> YoloGridTeacher:
    return YoloGridTeacher(Path(folder) / FILE, tuple(spec["mean"]), tuple(spec["std"]))
