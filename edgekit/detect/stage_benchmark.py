"""Detection stage 5: every artifact in its own runtime: mAP with the shared post-processing, agreement with
PyTorch, size, graph, host latency. Writes the same measurements.json as classification, with ``accuracy``
holding the task's headline metric (mAP50) and ``metric`` saying so.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from edgekit import __version__
from edgekit.bench.op_profile import onnx_op_times
from edgekit.bench.size_breakdown import tflite_bytes
from edgekit.bench.targets import load_target
from edgekit.bench.versions import host_info
from edgekit.config import stage_params
from edgekit.detect.agreement import detection_agreement
from edgekit.detect.evaluate import load_detector, load_eval_outputs, map_from_raw
from edgekit.detect.postprocess import DEFAULT_IOU, DEFAULT_SCORE
from edgekit.detect.runtimes import OUTPUTS, DetectionRunner
from edgekit.detect.stage_context import DetectContext
from edgekit.detect.train import detections
from edgekit.estimate.onnx_graph import graph_ops
from edgekit.estimate.op_costs import summarize
from edgekit.export.artifact_meta import PREPROCESS_FILE
from edgekit.export.guarded import retry_failed
from edgekit.pipeline.fingerprint import file_sha256
from edgekit.pipeline.runner import read_stage, run_stage, stage_dir
from edgekit.stages.benchmark import (REPORT_SCHEMA, RUNTIMES, host_threads, measure_artifacts, run_provenance,
                                      save_measurements)

VERSION = "3"  # 2: timed until enough quiet rounds (bench/latency.py); 3: ONNX sessions with session.x64quantprecision
METRIC = {"key": "map50", "name": "mAP50", "also": ["map50_95"],
          "agreement": "F1 of matching the file's detections to PyTorch's (same class, IoU >= 0.5) at score "
                       f"{DEFAULT_SCORE}, NMS IoU {DEFAULT_IOU}"}


def _app_detections(scores: np.ndarray, boxes: np.ndarray, size: int) -> list[list[dict[str, Any]]]:
    return detections(scores, boxes, size, DEFAULT_SCORE, DEFAULT_IOU)


def _artifact_row(ctx: DetectContext, path: Path, row: dict[str, Any], entry: dict[str, Any], threads: int,
                  x: np.ndarray, reference: dict[str, list[list[dict[str, Any]]]]
                  ) -> tuple[dict[str, Any], Callable[[], object]]:
    data, _ = ctx.data()
    runner = DetectionRunner(path, entry, threads)
    scores, boxes = runner(x)
    scores, boxes = scores.transpose(0, 2, 1), boxes.transpose(0, 2, 1)  # location-major for the decoder
    maps = map_from_raw(data, data.eval_split, scores, boxes)
    single = runner.prepare(x[:1])
    out = {**row, "runtime": RUNTIMES[row["format"]], "path": f"artifacts/{row['name']}", "bytes": path.stat().st_size,
           "sha256": file_sha256(path), "accuracy": maps["map50"], **maps,
           "agreement": detection_agreement(_app_detections(scores, boxes, data.size), reference[row["precision"]]),
           "agreement_reference": "PyTorch FP32 student" if row["precision"] == "fp32" else "PyTorch INT8 (PT2E converted)",
           "input_dtype": entry["input_dtype"], "layout": entry["layout"], "graph": summarize(graph_ops(path))}
    if row["format"] == "tflite":
        out["size_breakdown"] = tflite_bytes(path)
    else:
        out["host_op_ms"] = onnx_op_times(path, x[:1], threads)
    return out, lambda: runner.run_prepared(single)


def _teacher_graph(teacher_dir: Path, example: np.ndarray) -> dict[str, Any] | None:
    import torch

    from edgekit.export.onnx_format import export_onnx

    try:
        with tempfile.TemporaryDirectory() as tmp:
            export_onnx(load_detector(teacher_dir), torch.as_tensor(example), Path(tmp) / "teacher.onnx", {},
                        output_names=list(OUTPUTS))
            return summarize(graph_ops(Path(tmp) / "teacher.onnx"))
    except Exception:  # noqa: BLE001 - a teacher the exporter cannot take only loses its point in the plot
        return None


def _measurements(ctx: DetectContext, rows: list[dict[str, Any]], threads: int) -> dict[str, Any]:
    data, _ = ctx.data()
    records = {name: read_stage(ctx.out, name) for name in ("teacher", "distill", "quantize", "export")}
    teacher, student, quant = (records[k]["result"] for k in ("teacher", "distill", "quantize"))
    pick = lambda r: {"accuracy": r["map50"], "map50": r["map50"], "map50_95": r["map50_95"]}  # noqa: E731
    return {
        "schema": REPORT_SCHEMA, "edgekit_version": __version__, "task": "detect", "metric": METRIC,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": {**host_info(), "threads": threads},
        "data": {"source": data.source, "classes": data.classes, "eval_split": data.eval_split, "counts": data.counts(),
                 "skipped_images": len(data.skipped), "skipped": data.skipped[:100]},
        "teacher": {"arch": teacher["arch"], "source": teacher["source"], "params": teacher["params"],
                    **pick(teacher)},
        "students": [
            {"name": "student_fp32", "arch": "tiny_detector", "width": student["width"], "params": student["params"],
             **pick(student), "temperature": student["temperature"], "alpha": student["alpha"],
             "alpha_convention": "weight of the distillation terms (score KD, box and feature imitation)"},
            {"name": "student_int8_pytorch", "arch": "tiny_detector", "method": quant["method"],
             "teacher_guided": quant["teacher_guided"], "params": student["params"], **pick(quant)},
        ],
        "teacher_to_student_params": student["teacher_to_student_params"],
        "artifacts": rows,
        **run_provenance(ctx, records),
    }


def run(ctx: DetectContext) -> dict[str, Any]:
    s = ctx.settings
    export_record = read_stage(ctx.out, "export")
    data, identity = ctx.data()
    threads = host_threads(s.threads, load_target(s.target))
    art_dir = stage_dir(ctx.out, "export")
    inputs = {"data": identity, "artifacts": art_dir, "distill": stage_dir(ctx.out, "distill"),
              "quantize": stage_dir(ctx.out, "quantize"), "host_threads": str(threads)}

    def body(folder: Path) -> dict[str, Any]:
        preprocess = json.loads((art_dir / PREPROCESS_FILE).read_text(encoding="utf-8"))
        x = ctx.images(data.eval_split).numpy()
        reference = {precision: _app_detections(*load_eval_outputs(stage_dir(ctx.out, stage)), data.size)
                     for precision, stage in (("fp32", "distill"), ("int8", "quantize"))}
        rows = measure_artifacts(ctx, export_record, lambda base: _artifact_row(
            ctx, art_dir / base["name"], base, preprocess["artifacts"][base["name"]], threads, x, reference),
            threads, metric="mAP50")
        return save_measurements(folder, _measurements(ctx, rows, threads),
                                 _teacher_graph(stage_dir(ctx.out, "teacher"), x[:1]))

    return run_stage("benchmark", VERSION, stage_params(s, "benchmark"), inputs, ctx.out, body,
                     force=ctx.force or retry_failed(ctx.out, "benchmark", ctx.console), console=ctx.console)
