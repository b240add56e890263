"""How the export stage builds each file: the model it is made from and its format's writer.

The files and formats themselves are entries of edgekit/registry.py (``ARTIFACTS``, ``FORMATS``); a new format
is an entry there, its writer here (or in a module of its own) and its runner in runtime/runners.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from edgekit.data.preprocess import PreprocessSpec
from edgekit.runtime.ort_session import SESSION_CONFIG
from edgekit.export.onnx_format import INPUT_NAME, export_onnx
from edgekit.export.pte_format import export_pte
from edgekit.export.tflite_format import METADATA_NAME, export_tflite
from edgekit.export.tflite_raw_pixels import raw_pixel_io
from edgekit.registry import FORMATS, load

# Which model each file is made from: the FP32 student, the PT2E INT8 graph, or (for ONNX, whose
# QuantizeLinear weights are stored as int8 initializers, and for ExecuTorch, whose XNNPACK delegate takes
# the int8 weights as constants) that graph with its weights folded.
SOURCE_MODEL = {("onnx", "fp32"): "fp32", ("onnx", "int8"): "int8_folded", ("tflite", "fp32"): "fp32",
                ("tflite", "int8"): "int8", ("pte", "fp32"): "fp32", ("pte", "int8"): "int8_folded"}

@dataclass(frozen=True)
class FileJob:
    """What a format's writer needs besides the model: where, an example input, the recipe, the I/O types."""

    path: Path
    example: torch.Tensor  # NCHW, one image
    spec: PreprocessSpec
    outputs: list[str]
    int8: bool
    io: str  # an INT8 .tflite's input and output: "uint8" (raw pixels) or "int8"
    metadata: dict[str, Any]  # ONNX metadata_props, a .pte's constant method (the recipe); a .tflite gets its
                              # metadata once its I/O is known
    float_layers: bool = False  # the INT8 graph keeps some layers float (quantize/keep_float.py)


Writer = Callable[[torch.nn.Module, FileJob], None]


def write_onnx(model: torch.nn.Module, job: FileJob) -> None:
    export_onnx(model, job.example, job.path, job.metadata, output_names=job.outputs, int8=job.int8)


def write_tflite(model: torch.nn.Module, job: FileJob) -> None:
    export_tflite(model, job.example, job.path, int8=job.int8, float_layers=job.float_layers)
    if job.int8 and job.io == "uint8":
        raw_pixel_io(job.path, list(job.spec.mean), list(job.spec.std))


def write_pte(model: torch.nn.Module, job: FileJob) -> None:
    export_pte(model, job.example, job.path, job.metadata.get(METADATA_NAME))


def write_file(art: dict[str, str], models: dict[str, torch.nn.Module], job: FileJob) -> None:
    model = models[SOURCE_MODEL[art["format"], art["precision"]]]
    writer: Writer = load(FORMATS[art["format"]]["writer"])
    writer(model, job)


def planned_entry(fmt: str, outputs: tuple[str, ...]) -> dict[str, Any]:
    """An ONNX or ExecuTorch file's I/O entry as the exporter will write it (float in, float out), for its
    embedded recipe. ExecuTorch methods take their inputs by position: its ``input`` names the method."""
    entry: dict[str, Any] = {"input": "forward" if fmt == "pte" else INPUT_NAME, "layout": "NCHW",
                             "input_dtype": "float32"}
    if fmt != "pte":
        entry["session_config"] = dict(SESSION_CONFIG)
    entry["outputs"] = {name: {"index": i, "dtype": "float32"} for i, name in enumerate(outputs)}
    if len(outputs) == 1:
        entry["output_dtype"] = "float32"
    return entry
