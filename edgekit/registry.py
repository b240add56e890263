"""Everything a user can choose by name, in one place: tasks, students, teachers, distillation methods, data
formats, the files export writes, the runtimes that run them, and the target profiles.

Entries name their implementation as ``"module:attribute"`` and are imported only when used, so this module
imports nothing of edgekit's and every package may read it. Adding a task, a format or a runtime is one entry
here and one module (docs/architecture.md).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import import_module
from typing import Any

TASKS = {"classify": "edgekit.tasks.classify:ClassificationTask",
         "detect": "edgekit.tasks.detect:DetectionTask"}

# Models. Classification teachers: any torchvision classification builder (--teacher-arch), or the user's file.
STUDENTS = {"mobilenet_v2": "torchvision.models:mobilenet_v2",
            "mobilenet_v3_small": "torchvision.models:mobilenet_v3_small",
            "mobilenet_v3_large": "torchvision.models:mobilenet_v3_large"}
# The students --student auto chooses from (choose/candidates.py): architecture and widths, each at the input sizes
# that suit the data; a config file's [[candidates]] tables replace the set.
STUDENT_CANDIDATES: tuple[tuple[str, tuple[float, ...]], ...] = (
    ("mobilenet_v2", (0.35, 0.5, 0.75, 1.0)),
    ("mobilenet_v3_small", (0.75, 1.0)),
    ("mobilenet_v3_large", (0.75, 1.0)),
)
DETECTOR_CANDIDATES: tuple[tuple[str, tuple[float, ...]], ...] = (("tiny_detector", (0.35, 0.5, 0.75, 1.0)),)
DETECTION_MODELS = {"tiny_detector": "edgekit.detect.tiny_detector:TinyDetector",
                    "fcos_resnet50_fpn": "edgekit.detect.torchvision_teacher:FCOSTeacher"}  # the FCOS: a teacher only

# Distillation: loss terms (combine with +) and strategies (how many models train and who teaches whom).
METHOD_TERMS = {"kd": "edgekit.distill.losses:KD", "dkd": "edgekit.distill.losses:DKD",
                "fitnet": "edgekit.distill.feature_losses:FitNet", "at": "edgekit.distill.feature_losses:AttentionTransfer",
                "rkd": "edgekit.distill.relational:RKD"}
METHOD_STRATEGIES = {"ensemble": "edgekit.models.ensemble:EnsembleTeacher",
                     "progressive": "edgekit.distill.assistants:assistant_widths",
                     "self": "edgekit.tasks.classify:ClassificationTask.student_chain"}

# Data: what --data can be, per task; the loader decides by what the path is.
DATA_FORMATS = {
    "classify": {"built-in digits": "edgekit.data.builtin_digits:load_builtin_digits",
                 "ImageFolder directory": "edgekit.data.image_folder:load_image_folder"},
    "detect": {"built-in scenes": "edgekit.detect.data:builtin_scenes",
               "YOLO data.yaml": "edgekit.detect.yolo_data:load_yolo",
               "COCO instances.json + --images": "edgekit.detect.coco_data:load_coco"},
}

# The files the export stage writes (name, format, precision) and, per format, its writer and its runtime.
ARTIFACTS: tuple[dict[str, str], ...] = (
    {"name": "model_fp32.onnx", "format": "onnx", "precision": "fp32"},
    {"name": "model_int8.onnx", "format": "onnx", "precision": "int8"},
    {"name": "model_fp32.tflite", "format": "tflite", "precision": "fp32"},
    {"name": "model_int8.tflite", "format": "tflite", "precision": "int8"},
    {"name": "model_fp32.pte", "format": "pte", "precision": "fp32"},
    {"name": "model_int8.pte", "format": "pte", "precision": "int8"},
)
FORMATS = {"onnx": {"suffix": ".onnx", "writer": "edgekit.export.formats:write_onnx", "runtime": "onnxruntime",
                    "layers": "edgekit.layers.onnx_points:onnx_layer_outputs"},
           "tflite": {"suffix": ".tflite", "writer": "edgekit.export.formats:write_tflite", "runtime": "ai-edge-litert",
                      "layers": "edgekit.layers.tflite_points:tflite_layer_outputs"},
           "pte": {"suffix": ".pte", "writer": "edgekit.export.formats:write_pte", "runtime": "executorch"}}
RUNTIMES = {"onnxruntime": "edgekit.runtime.runners:OnnxRunner", "ai-edge-litert": "edgekit.runtime.runners:LiteRTRunner",
            "executorch": "edgekit.runtime.executorch_runner:ExecuTorchRunner"}

# Target profiles: the .toml files in targets/ (shipped as edgekit.targets), or a path given to --target.
TARGETS = "edgekit.estimate.target_profiles:target_names"


def load(reference: str) -> Any:
    """The object a ``"module:attribute"`` entry names."""
    module, _, attribute = reference.partition(":")
    value: Any = import_module(module)
    for part in attribute.split("."):
        value = getattr(value, part)
    return value


@lru_cache(maxsize=None)
def get_task(name: str) -> Any:
    """The task of that name (an instance of its ``Task`` class)."""
    return load(TASKS[name])()


def format_of(path: Any) -> str:
    """The export format a file is, by its suffix (KeyError for one no runtime here opens)."""
    suffix = str(path)[str(path).rfind("."):]
    return next(name for name, f in FORMATS.items() if f["suffix"] == suffix)


def runner_class(path: Any) -> Any:
    return load(RUNTIMES[FORMATS[format_of(path)]["runtime"]])
