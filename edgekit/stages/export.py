"""Stage 4: four self-contained files (ONNX and TFLite, FP32 and INT8), labels, preprocess.json, parity.

Each format is exported by its own function and fails alone (as in Ultralytics' exporter): a failed
conversion is recorded with its error, and the other files are still written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.bench.ort_session import SESSION_CONFIG
from edgekit.bench.runtimes import onnx_io, open_runner, tflite_io
from edgekit.config import stage_params
from edgekit.export.guarded import FAILED_FILES, failed_names, guarded_export, retry_failed
from edgekit.export.artifact_meta import LABELS_FILE, PREPROCESS_FILE, embedded_document, labels_text, preprocess_document
from edgekit.export.onnx_format import export_onnx
from edgekit.export.tflite_format import METADATA_NAME, embed_metadata, export_tflite
from edgekit.models.predictions import load_logits
from edgekit.models.stage_models import load_prepared, load_student
from edgekit.pipeline.atomic import write_json_atomic, write_text_atomic
from edgekit.pipeline.runner import read_stage, run_stage, stage_dir
from edgekit.quantize import pt2e
from edgekit.quantize.converted_cache import converted_graph
from edgekit.stages.common import StageContext

VERSION = "2"  # 2: int8 initializers not shared between nodes; session_config in preprocess.json
PARITY_IMAGES = 64
ARTIFACTS = (  # name, format, precision
    ("model_fp32.onnx", "onnx", "fp32"),
    ("model_int8.onnx", "onnx", "int8"),
    ("model_fp32.tflite", "tflite", "fp32"),
    ("model_int8.tflite", "tflite", "int8"),
)


def reference_predictions(out: Path) -> dict[str, np.ndarray]:
    """Top-1 on the eval split of the PyTorch model each precision is compared with, as its stage saved it:
    the FP32 student (distill) and the converted INT8 graph (quantize)."""
    return {"fp32": load_logits(stage_dir(out, "distill")).argmax(1).numpy(),
            "int8": load_logits(stage_dir(out, "quantize")).argmax(1).numpy()}


def run(ctx: StageContext) -> dict[str, Any]:
    s = ctx.settings
    read_stage(ctx.out, "quantize")
    inputs = {"data": ctx.data.identity, "student": stage_dir(ctx.out, "distill"),
              "quantize": stage_dir(ctx.out, "quantize")}

    def body(folder: Path) -> dict[str, Any]:
        spec, classes = ctx.spec, ctx.data.classes
        int8 = converted_graph(stage_dir(ctx.out, "quantize"), lambda: pt2e.convert(
            load_prepared(stage_dir(ctx.out, "distill"), stage_dir(ctx.out, "quantize"), s.size)))
        models = {"fp32": load_student(stage_dir(ctx.out, "distill")), "int8": int8,
                  "int8_folded": pt2e.fold_weights(int8)}
        reference = reference_predictions(ctx.out)
        x_eval, _ = ctx.eval_split()
        example = x_eval[:1]
        onnx_entry = {"input": "image", "layout": "NCHW", "input_dtype": "float32", "output_dtype": "float32",
                      "session_config": dict(SESSION_CONFIG)}
        makers: dict[str, Callable[[Path], None]] = {
            "model_fp32.onnx": lambda p: export_onnx(models["fp32"], example, p,
                                                     {"edgekit.preprocess": embedded_document(spec, classes, p.name, onnx_entry)}),
            "model_int8.onnx": lambda p: export_onnx(models["int8_folded"], example, p,
                                                     {"edgekit.preprocess": embedded_document(spec, classes, p.name, onnx_entry)}),
            "model_fp32.tflite": lambda p: export_tflite(models["fp32"], example, p, int8=False),
            "model_int8.tflite": lambda p: export_tflite(models["int8"], example, p, int8=True),
        }
        entries: dict[str, dict[str, Any]] = {}
        results: list[dict[str, Any]] = []
        x_parity = x_eval[:PARITY_IMAGES]
        for name, fmt, precision in ARTIFACTS:
            def build(path: Path, name: str = name, fmt: str = fmt, precision: str = precision
                      ) -> tuple[dict[str, Any], str]:
                makers[name](path)
                entry = onnx_io(path) if fmt == "onnx" else tflite_io(path)
                if fmt == "tflite":
                    embed_metadata(path, METADATA_NAME,
                                   json.dumps(embedded_document(spec, classes, name, entry)).encode())
                entries[name] = entry
                runner = open_runner(path, entry, threads=1)
                expected = reference[precision][:len(x_parity)]
                agreement = float(np.mean(expected == runner(x_parity.numpy()).argmax(1)))
                return ({"parity_images": len(x_parity), "parity_agreement": agreement},
                        f"top-1 agreement with PyTorch {agreement:.3f} on {len(x_parity)} images")

            results.append(guarded_export({"name": name, "format": fmt, "precision": precision}, folder / name, build,
                                          ctx.console))
        entries = {r["name"]: entries[r["name"]] for r in results if r["status"] == "ok"}  # no recipe for a failed file
        write_text_atomic(folder / LABELS_FILE, labels_text(classes))
        write_json_atomic(folder / PREPROCESS_FILE, preprocess_document(spec, entries))
        return {"artifacts": results, FAILED_FILES: failed_names(results)}

    return run_stage("export", VERSION, stage_params(s, "export"), inputs, ctx.out, body,
                     force=ctx.force or retry_failed(ctx.out, "export", ctx.console), console=ctx.console)
