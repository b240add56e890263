"""The per-layer report of a run: every quantized layer's output in each exported file, against the FP32
student's and the PyTorch INT8 graph's same layer, on a fixed sample of test images (``benchmark/layers.json``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgekit.export.artifact_meta import PREPROCESS_FILE
from edgekit.layers.metrics import cosine, sqnr_db
from edgekit.layers.torch_points import (Layer, attach_fp32_points, fp32_outputs, int8_layers, int8_outputs,
                                          own_references)
from edgekit.pipeline.runner import read_stage, stage_dir
from edgekit.quantize import pt2e
from edgekit.quantize.converted_cache import converted_graph
from edgekit.quantize.keep_float import keep_float
from edgekit.quantize.saved_graph import load_prepared_module
from edgekit.registry import FORMATS, format_of, load

SCHEMA = "edgekit.layers/1"
LAYERS_FILE = "layers.json"
DEFAULT_IMAGES = 32
PYTORCH_INT8 = "PyTorch INT8 graph"
KERNELS = {"onnx": "a plain onnxruntime session with the layer outputs added as graph outputs",
           "tflite": "LiteRT's built-in kernels (a delegate hides intermediate tensors)"}


def _rows(layers: list[Layer], values: dict[str, np.ndarray], fp32: dict[str, np.ndarray],
          int8: dict[str, np.ndarray] | None, own: dict[str, np.ndarray] | None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for layer in layers:
        value = values[layer.path]
        row: dict[str, Any] = {"layer": layer.path, "kind": layer.kind,
                               "sqnr_fp32_db": round(sqnr_db(fp32[layer.path], value), 2),
                               "cosine_fp32": round(cosine(fp32[layer.path], value), 5)}
        if int8 is not None:
            row["sqnr_int8_db"] = round(sqnr_db(int8[layer.path], value), 2)
            row["cosine_int8"] = round(cosine(int8[layer.path], value), 5)
        if own is not None:  # the error this layer adds itself, from the file's own input to it
            row["own_sqnr_db"] = round(sqnr_db(own[layer.path], value), 2)
        rows.append(row)
    return rows


def _summary(name: str, precision: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "precision": precision, "layers": rows}
    if precision == "int8":
        ranked = sorted(rows, key=lambda r: r["own_sqnr_db"])
        entry["error_enters"] = {k: ranked[0][k] for k in ("layer", "own_sqnr_db", "sqnr_fp32_db")}
        entry["worst"] = [r["layer"] for r in ranked[:5]]
    return entry


def layer_report(out: Path, task: Any, images: torch.Tensor, files: list[str] | None = None) -> dict[str, Any]:
    """The report for the run in ``out`` on ``images`` (preprocessed NCHW); ``files`` limits it to those names."""
    import json

    started = time.perf_counter()
    distill_dir, quantize_dir, export_dir = (stage_dir(out, s) for s in ("distill", "quantize", "export"))
    size = int(images.shape[-1])
    student = task.load_student(distill_dir)  # prepare() works on a copy, so one load serves both graphs
    converted = converted_graph(quantize_dir, lambda: pt2e.convert(load_prepared_module(student, quantize_dir, size)))
    export = read_stage(out, "export")["result"]
    kept = (export.get("kept_float") or {}).get("kept_float") or []
    if kept:  # the files' graph: those layers run in float and are left out of the comparison
        converted = keep_float(converted, kept)
    layers = int8_layers(converted)
    fp32_graph = pt2e.capture(student, images[:2], train=False)
    attach_fp32_points(fp32_graph, layers)
    fp32 = fp32_outputs(fp32_graph, layers, images)
    int8 = int8_outputs(converted, layers, images)
    timings = {"pytorch graphs": round(time.perf_counter() - started, 2)}
    report: dict[str, Any] = {
        "schema": SCHEMA, "images": len(images),
        "layers": [{"layer": la.path, "kind": la.kind, "upstream": la.upstream} for la in layers],
        "files": [_summary(PYTORCH_INT8, "int8", _rows(layers, int8, fp32, None,
                                                       own_references(fp32_graph, layers, int8, images)))],
        "not_compared": [], "kept_float": kept}
    entries = json.loads((export_dir / PREPROCESS_FILE).read_text(encoding="utf-8"))["artifacts"]
    for art in export["artifacts"]:
        name = art["name"]
        if art["status"] != "ok" or (files is not None and name not in files):
            continue
        reader = FORMATS[format_of(name)].get("layers")
        if reader is None:
            report["not_compared"].append({"name": name, "reason": f"{FORMATS[format_of(name)]['runtime']} runs "
                                           "the whole graph in one delegate call; its layer outputs are not readable"})
            continue
        file_started = time.perf_counter()
        values, _ = load(reader)(export_dir / name, entries[name], layers, images.numpy())
        timings[name] = round(time.perf_counter() - file_started, 2)
        own = own_references(fp32_graph, layers, values, images) if art["precision"] == "int8" else None
        summary = _summary(name, art["precision"], _rows(layers, values, fp32, int8 if own else None, own))
        summary["kernels"] = KERNELS[format_of(name)]
        report["files"].append(summary)
    report["seconds"] = round(time.perf_counter() - started, 2)
    report["seconds_by_part"] = timings
    return report
