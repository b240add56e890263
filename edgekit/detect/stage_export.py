"""Detection stage 4: the student as four files (ONNX and TFLite, FP32 and INT8), each checked against PyTorch.

Two outputs, ``scores`` [1, C, A] and ``boxes`` [1, 4, A] (channel-major). preprocess.json gains a ``detection`` section with
what an app needs to decode them: strides, the grid and box encoding, thresholds, and, per file, which output
index holds what (LiteRT may reorder outputs, so the order is read back from the converted file).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgekit.bench.ort_session import SESSION_CONFIG
from edgekit.config import stage_params
from edgekit.detect.evaluate import load_detector
from edgekit.detect.postprocess import DEFAULT_IOU, DEFAULT_SCORE
from edgekit.detect.runtimes import OUTPUTS, run_file
from edgekit.detect.stage_context import DetectContext
from edgekit.detect.tiny_detector import STRIDES
from edgekit.export.guarded import FAILED_FILES, failed_names, guarded_export, retry_failed
from edgekit.export.artifact_meta import LABELS_FILE, PREPROCESS_FILE, labels_text
from edgekit.export.onnx_format import export_onnx
from edgekit.export.quiet import quiet_fds
from edgekit.export.tflite_format import METADATA_NAME, embed_metadata, export_tflite
from edgekit.models.stage_models import load_prepared_module
from edgekit.pipeline.atomic import write_json_atomic, write_text_atomic
from edgekit.pipeline.runner import read_stage, run_stage, stage_dir
from edgekit.quantize import pt2e
from edgekit.quantize.converted_cache import converted_graph

VERSION = "2"  # 2: int8 initializers not shared between nodes; session_config in preprocess.json
ARTIFACTS = (("model_fp32.onnx", "onnx", "fp32"), ("model_int8.onnx", "onnx", "int8"),
             ("model_fp32.tflite", "tflite", "fp32"), ("model_int8.tflite", "tflite", "int8"))
PARITY_IMAGES = 32


def detection_section(num_classes: int) -> dict[str, Any]:
    return {"task": "detect", "outputs": list(OUTPUTS), "output_layout": "[batch, channels, locations]",
            "strides": list(STRIDES),
            "grid": "per stride, row-major cells; centre = ((col + 0.5) * stride, (row + 0.5) * stride) in input pixels",
            "box_encoding": "ltrb: distances from the cell centre to the left, top, right, bottom sides, in strides",
            "scores": f"sigmoid, one column per class ({num_classes})",
            "score_threshold": DEFAULT_SCORE, "iou_threshold": DEFAULT_IOU, "nms": "class-wise, greedy"}


def _onnx_entry(path: Path) -> dict[str, Any]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    return {"input": inp.name, "layout": "NCHW", "input_dtype": "float32", "session_config": dict(SESSION_CONFIG),
            "outputs": {o.name: {"index": i, "dtype": "float32"} for i, o in enumerate(session.get_outputs())}}


def _tflite_entry(path: Path, num_classes: int) -> dict[str, Any]:
    from ai_edge_litert.interpreter import Interpreter

    with quiet_fds():
        interpreter = Interpreter(model_path=str(path))
    inp = interpreter.get_input_details()[0]
    entry: dict[str, Any] = {"input": inp["name"], "layout": "NHWC", "input_dtype": np.dtype(inp["dtype"]).name,
                             "outputs": {}}
    if entry["input_dtype"] != "float32":
        entry["input_scale"], entry["input_zero_point"] = float(inp["quantization"][0]), int(inp["quantization"][1])
    details = interpreter.get_output_details()
    # which is which: the scores have one column per class, the boxes four (same width: the first is scores)
    widths = [int(d["shape"][1]) for d in details]
    order = sorted(range(len(details)), key=lambda i: (widths[i] != num_classes, i))
    for name, i in zip(OUTPUTS, order):
        d = details[i]
        out = {"index": i, "dtype": np.dtype(d["dtype"]).name}
        if out["dtype"] != "float32":
            out["scale"], out["zero_point"] = float(d["quantization"][0]), int(d["quantization"][1])
        entry["outputs"][name] = out
    return entry


def run(ctx: DetectContext) -> dict[str, Any]:
    s = ctx.settings
    data, identity = ctx.data()
    read_stage(ctx.out, "quantize")
    distill_dir, quantize_dir = stage_dir(ctx.out, "distill"), stage_dir(ctx.out, "quantize")

    def body(folder: Path) -> dict[str, Any]:
        fp32 = load_detector(distill_dir)
        int8 = converted_graph(quantize_dir, lambda: pt2e.convert(
            load_prepared_module(load_detector(distill_dir), quantize_dir, s.size)))
        models = {"fp32": fp32, "int8": int8, "int8_folded": pt2e.fold_weights(int8)}
        x_eval = ctx.images(data.eval_split)
        example = x_eval[:1]
        names = list(OUTPUTS)
        makers = {
            "model_fp32.onnx": lambda p: export_onnx(models["fp32"], example, p, {}, output_names=names),
            "model_int8.onnx": lambda p: export_onnx(models["int8_folded"], example, p, {}, output_names=names),
            "model_fp32.tflite": lambda p: export_tflite(models["fp32"], example, p, int8=False),
            "model_int8.tflite": lambda p: export_tflite(models["int8"], example, p, int8=True),
        }
        x_parity = x_eval[:PARITY_IMAGES]
        with torch.no_grad():
            reference = {k: tuple(t.numpy() for t in models[k](x_parity)) for k in ("fp32", "int8")}
        entries: dict[str, Any] = {}
        rows = []
        section = detection_section(len(data.classes))
        for name, fmt, precision in ARTIFACTS:
            def build(path: Path, name: str = name, fmt: str = fmt, precision: str = precision
                      ) -> tuple[dict[str, Any], str]:
                makers[name](path)
                entry = _onnx_entry(path) if fmt == "onnx" else _tflite_entry(path, len(data.classes))
                if fmt == "tflite":
                    document = {"schema": "edgekit.preprocess/1", **ctx.spec.to_dict(), "classes": data.classes,
                                "artifact": name, "detection": section, **entry}
                    embed_metadata(path, METADATA_NAME, json.dumps(document).encode())
                entries[name] = entry
                scores, boxes = run_file(path, entry, x_parity.numpy())
                ref_scores, ref_boxes = reference[precision]
                extra = {"parity_max_score_diff": float(np.abs(scores - ref_scores).max()),
                         "parity_max_box_diff": float(np.abs(boxes - ref_boxes).max())}
                return extra, (f"max |score - PyTorch| {extra['parity_max_score_diff']:.4f}, "
                               f"max |box - PyTorch| {extra['parity_max_box_diff']:.4f}")

            rows.append(guarded_export({"name": name, "format": fmt, "precision": precision}, folder / name, build,
                                       ctx.console))
        entries = {r["name"]: entries[r["name"]] for r in rows if r["status"] == "ok"}  # no recipe for a failed file
        write_text_atomic(folder / LABELS_FILE, labels_text(data.classes))
        write_json_atomic(folder / PREPROCESS_FILE, {"schema": "edgekit.preprocess/1", **ctx.spec.to_dict(),
                                                     "labels": LABELS_FILE, "detection": section, "artifacts": entries})
        return {"artifacts": rows, FAILED_FILES: failed_names(rows)}

    return run_stage("export", VERSION, stage_params(s, "export"),
                     {"data": identity, "student": distill_dir, "quantize": quantize_dir}, ctx.out, body,
                     force=ctx.force or retry_failed(ctx.out, "export", ctx.console), console=ctx.console)
