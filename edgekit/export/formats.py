"""How the export stage builds each file: the model it is made from and its format's writer.

The files and formats themselves are entries of edgekit/registry.py (``ARTIFACTS``, ``FORMATS``); a new format
is an entry there, its writer here (or in a module of its own) and its runner in runtime/runners.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from edgekit.runtime.ort_session import SESSION_CONFIG
from edgekit.export.onnx_format import INPUT_NAME, export_onnx
from edgekit.export.tflite_format import export_tflite
from edgekit.registry import FORMATS, load

# Which model each file is made from: the FP32 student, the PT2E INT8 graph, or (for ONNX, whose
# QuantizeLinear weights are stored as int8 initializers) that graph with its weights folded.
SOURCE_MODEL = {("onnx", "fp32"): "fp32", ("onnx", "int8"): "int8_folded", ("tflite", "fp32"): "fp32",
                ("tflite", "int8"): "int8"}

Writer = Callable[[torch.nn.Module, torch.Tensor, Path, dict[str, Any], list[str], bool], None]


def write_onnx(model: torch.nn.Module, example: torch.Tensor, path: Path, metadata: dict[str, Any], outputs: list[str],
          int8: bool) -> None:
    export_onnx(model, example, path, metadata, output_names=outputs)


def write_tflite(model: torch.nn.Module, example: torch.Tensor, path: Path, metadata: dict[str, Any], outputs: list[str],
            int8: bool) -> None:
    export_tflite(model, example, path, int8=int8)  # its metadata is embedded once the file's I/O is known


def write_file(art: dict[str, str], models: dict[str, torch.nn.Module], example: torch.Tensor, path: Path,
               metadata: dict[str, Any], outputs: list[str]) -> None:
    model = models[SOURCE_MODEL[art["format"], art["precision"]]]
    writer: Writer = load(FORMATS[art["format"]]["writer"])
    writer(model, example, path, metadata, outputs, art["precision"] == "int8")


def planned_onnx_entry(outputs: tuple[str, ...]) -> dict[str, Any]:
    """An ONNX file's I/O entry as the exporter will write it (float in, float out), for its embedded recipe."""
    entry: dict[str, Any] = {"input": INPUT_NAME, "layout": "NCHW", "input_dtype": "float32",
                             "session_config": dict(SESSION_CONFIG),
                             "outputs": {name: {"index": i, "dtype": "float32"} for i, name in enumerate(outputs)}}
    if len(outputs) == 1:
        entry["output_dtype"] = "float32"
    return entry
