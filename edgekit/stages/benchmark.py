"""Stage 5: every artifact in its own runtime: size, accuracy, agreement with PyTorch, host latency."""

from __future__ import annotations

import json
import traceback
from datetime import datetime, timezone
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgekit import __version__
from edgekit.bench.final_report import REPORT_SCHEMA
from edgekit.bench.latency import measure_interleaved
from edgekit.bench.op_profile import onnx_op_times
from edgekit.runtime.runners import open_runner
from edgekit.bench.size_breakdown import tflite_bytes
from edgekit.estimate.target_profiles import load_target
from edgekit.bench.threads import thread_counts
from edgekit.runtime.versions import host_info, library_versions
from edgekit.distill.progress import progress_bar
from edgekit.errors import EdgekitError, is_disk_full
from edgekit.estimate.onnx_graph import GRAPH_FORMATS, graph_ops
from edgekit.estimate.op_costs import summarize
from edgekit.export.artifact_meta import PREPROCESS_FILE
from edgekit.export.guarded import FAILED_FILES, error_text, retry_failed
from edgekit.layers.report import DEFAULT_IMAGES, LAYERS_FILE, layer_report
from edgekit.layers.report import SCHEMA as LAYERS_SCHEMA
from edgekit.pipeline.atomic import write_json_atomic
from edgekit.pipeline.fingerprint import file_sha256
from edgekit.pipeline.runner import read_stage, run_stage, stage_dir
from edgekit.models.predictions import load_outputs
from edgekit.stages.context import StageContext

VERSION = "10"  # 2: measurements.json with graph summaries (reports: bench/final_report.py); 3: timed >= 1 s; 4: 5 rounds, host cores - 1; 5: artifacts timed interleaved; 6: until enough quiet rounds; 7: ONNX sessions with session.x64quantprecision; 8: one chain for every task; 9: .pte files (no graph); 10: layers.json (per-layer INT8 error)
EVAL_CHUNK = 256
MEASUREMENTS = "measurements.json"


def _artifact_row(ctx: StageContext, art_dir: Path, row: dict[str, Any], entry: dict[str, Any], threads: int,
                  x: np.ndarray, reference: dict[str, dict[str, np.ndarray]]
                  ) -> tuple[dict[str, Any], Callable[[], object]]:
    """Everything but latency for one artifact, and the single-image call that latency times."""
    task, data = ctx.task, ctx.data
    path = art_dir / row["name"]
    runner = open_runner(path, entry, threads)
    parts = []
    with progress_bar() as bar:
        progress = bar.add_task(f"benchmark {row['name']}", total=len(x), info=task.metric.name)
        for i in range(0, len(x), EVAL_CHUNK):
            parts.append(runner.outputs(x[i:i + EVAL_CHUNK]))
            bar.update(progress, advance=len(x[i:i + EVAL_CHUNK]))
    outputs = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    scores = task.score(data, data.eval_split, outputs)
    single = runner.prepared_single(x)
    out = {**row, "runtime": runner.runtime, "path": f"artifacts/{row['name']}", "bytes": path.stat().st_size,
           "sha256": file_sha256(path), **scores, "accuracy": scores[task.metric.key],
           "agreement": task.agreement(data, outputs, reference[row["precision"]]),
           "agreement_reference": "PyTorch FP32 student" if row["precision"] == "fp32" else "PyTorch INT8 (PT2E converted)",
           "input_dtype": entry["input_dtype"], "layout": entry["layout"]}
    # the operator walk (the target estimate's input), size breakdown and per-operator host times exist for
    # .tflite and .onnx; a .pte gets none of them (graph None: no target estimate, bench/final_report.py)
    out["graph"] = summarize(graph_ops(path)) if row["format"] in GRAPH_FORMATS else None
    if row["format"] == "tflite":
        out["size_breakdown"] = tflite_bytes(path)
    elif row["format"] == "onnx":
        out["host_op_ms"] = onnx_op_times(path, x[:1], threads)
    return out, lambda: runner.run_prepared(single)


def add_latencies(ctx: StageContext, rows: list[dict[str, Any]], calls: dict[str, Callable[[], object]],
                  threads: int, metric: str = "accuracy") -> None:
    """Time every artifact's single-image call together, interleaved (see bench/latency.py), into its row."""
    # a line, not a spinner: a spinner's refresh thread would share the cores being timed
    ctx.console.print(f"benchmark: timing {len(calls)} artifacts on the host, interleaved ({threads} threads)")
    latencies = measure_interleaved(calls, ctx.settings.latency_runs, threads, seconds=ctx.settings.latency_seconds)
    for row in rows:
        if row["name"] in latencies:
            row["latency_ms"] = latencies[row["name"]]
            ctx.console.print(f"benchmark: {row['name']}: {metric} {row['accuracy']:.4f}, agreement {row['agreement']:.4f}, "
                              f"p50 {row['latency_ms']['p50']:.3f} ms ({threads} threads)")


def teacher_graph(ctx: StageContext, example: torch.Tensor) -> dict[str, Any] | None:
    """The teacher's operator summary (through a temporary ONNX export), so reports can place it on the target."""
    import tempfile

    from edgekit.export.onnx_format import export_onnx
    from edgekit.models.stage_models import ONNX_TEACHER

    teacher_dir = stage_dir(ctx.out, "teacher")
    kept = [teacher_dir / name for name in (ONNX_TEACHER, *ctx.task.teacher_onnx_files) if (teacher_dir / name).is_file()]
    try:  # a user's ONNX file, or an architecture the exporter cannot take, only loses the teacher's plot point
        if kept:
            return summarize(graph_ops(kept[0]))
        with tempfile.TemporaryDirectory() as tmp:
            teacher = ctx.task.load_teacher(teacher_dir).eval()
            export_onnx(teacher, example, Path(tmp) / "teacher.onnx", {}, output_names=list(ctx.task.output_names))
            return summarize(graph_ops(Path(tmp) / "teacher.onnx"))
    except Exception:  # noqa: BLE001
        return None


def build_measurements(ctx: StageContext, artifacts: list[dict[str, Any]], threads: int) -> dict[str, Any]:
    records = {name: read_stage(ctx.out, name) for name in ("teacher", "distill", "quantize", "export")}
    teacher, student, quant = (records[k]["result"] for k in ("teacher", "distill", "quantize"))
    data, task = ctx.data, ctx.task
    keys = (task.metric.key, *task.metric.also)

    def scores(result: dict[str, Any]) -> dict[str, Any]:
        return {"accuracy": result[task.metric.key], **{k: result[k] for k in keys}}

    return {
        "schema": REPORT_SCHEMA,
        "edgekit_version": __version__,
        **task.report_fields(),
        "parity_gate": task.parity_gate,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": {**host_info(), "threads": threads},
        "data": {"source": data.source, "classes": data.classes, "eval_split": data.eval_split, "counts": data.counts(),
                 "skipped_images": len(data.skipped), "skipped": data.skipped[:100], "input_size": ctx.settings.size,
                 **({"input_size_reason": ctx.settings.size_reason} if ctx.settings.size_reason else {}),
                 **({"distill_epochs_reason": why} if (why := ctx.settings.record.get("distill_epochs_reason")) else {})},
        "teacher": {"arch": teacher["arch"], "source": teacher["source"], "params": teacher["params"], **scores(teacher)},
        "students": [
            {"name": "student_fp32", "arch": student["arch"], "width": student["width"], "params": student["params"],
             **scores(student), "temperature": student["temperature"], "alpha": student["alpha"],
             "method": student.get("method", "kd"), "alpha_convention": task.alpha_convention},
            {"name": "student_int8_pytorch", "arch": student["arch"], "method": quant["method"],
             "teacher_guided": quant["teacher_guided"], **({"loss": quant["loss"]} if quant.get("loss") else {}),
             "params": student["params"],
             **scores(quant)},
        ],
        "teacher_to_student_params": student["teacher_to_student_params"],
        "artifacts": artifacts,
        **run_provenance(ctx, records),
    }


def run_provenance(ctx: Any, records: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Stage timings, library versions and settings: the part of measurements.json every task shares."""
    return {"stages": {name: {"seconds": rec["seconds"], "finished_at": rec["finished_at"]} for name, rec in records.items()},
            "versions": library_versions(), "settings": ctx.settings.record}


def save_measurements(folder: Path, measurements: dict[str, Any], teacher_graph: dict[str, Any] | None) -> dict[str, Any]:
    """Write measurements.json (with the teacher's graph, for its point on the target) and the stage's summary."""
    measurements["teacher"]["graph"] = teacher_graph
    rows = measurements["artifacts"]
    here = [r for r in rows if r.get("failed_in") == "benchmark"]
    tracebacks = {r["name"]: r.pop("traceback") for r in here}  # stage.json keeps them; the reports need not
    write_json_atomic(folder / MEASUREMENTS, measurements)
    return {"artifacts": len(rows), "failed": sum(r["status"] != "ok" for r in rows),
            FAILED_FILES: [r["name"] for r in here], "tracebacks": tracebacks}


MeasureOne = Callable[[dict[str, Any]], tuple[dict[str, Any], Callable[[], object]]]


def measure_artifacts(ctx: Any, export_record: dict[str, Any], measure_one: MeasureOne, threads: int,
                      metric: str = "accuracy") -> list[dict[str, Any]]:
    """One row per exported file: failed exports as such, the others through ``measure_one`` (everything but
    latency, and the call to time), then every file's latency timed together."""
    rows, calls = [], {}
    for row in export_record["result"]["artifacts"]:
        base = {k: row[k] for k in ("name", "format", "precision")}
        if row["status"] != "ok":
            rows.append({**base, "status": "failed", "failed_in": "export", "error": row.get("error", "")})
            continue
        try:
            measured, calls[row["name"]] = measure_one(base)
        except (EdgekitError, MemoryError):
            raise
        except Exception as exc:  # noqa: BLE001 - a file its runtime cannot load fails alone, as in export
            if is_disk_full(exc):
                raise
            ctx.console.print(f"benchmark: {row['name']} failed: {error_text(exc)}", markup=False, highlight=False)
            rows.append({**base, "status": "failed", "failed_in": "benchmark", "error": error_text(exc),
                         "traceback": traceback.format_exc()})
            continue
        rows.append({**base, "status": "ok", **measured})
    add_latencies(ctx, rows, calls, threads, metric)
    return rows


def write_layer_report(ctx: StageContext, folder: Path, images: torch.Tensor) -> None:
    """benchmark/layers.json; a model whose layers cannot be matched or read gets the reason there and a warning,
    and the files are still measured."""
    try:
        report = layer_report(ctx.out, ctx.task, images)
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - a diagnostic: a graph it cannot map must not cost the measurements
        if is_disk_full(exc):
            raise
        report = {"schema": LAYERS_SCHEMA, "error": str(exc) if isinstance(exc, EdgekitError) else error_text(exc)}
        ctx.console.print(f"warning: no per-layer report: {report['error']}", markup=False, highlight=False)
    write_json_atomic(folder / LAYERS_FILE, report)
    for entry in report.get("files", []):
        if "error_enters" in entry:
            where = entry["error_enters"]
            ctx.console.print(f"layers: {entry['name']}: error enters at {where['layer']} (own SQNR {where['own_sqnr_db']:.1f} dB, "
                              f"{where['sqnr_fp32_db']:.1f} dB against FP32)", markup=False, highlight=False)


def run(ctx: StageContext) -> dict[str, Any]:
    ctx = ctx.for_stage("benchmark")
    s = ctx.settings
    export_record = read_stage(ctx.out, "export")
    threads = thread_counts(s.threads, load_target(s.target)).host
    art_dir = stage_dir(ctx.out, "export")
    inputs = {"data": ctx.data.identity, "artifacts": art_dir, "distill": stage_dir(ctx.out, "distill"),
              "quantize": stage_dir(ctx.out, "quantize"), "host_threads": str(threads)}

    def body(folder: Path) -> dict[str, Any]:
        preprocess = json.loads((art_dir / PREPROCESS_FILE).read_text(encoding="utf-8"))
        x_t = ctx.eval_images()
        reference = {"fp32": load_outputs(stage_dir(ctx.out, "distill")), "int8": load_outputs(stage_dir(ctx.out, "quantize"))}
        x = x_t.numpy()
        rows = measure_artifacts(ctx, export_record, lambda base: _artifact_row(
            ctx, art_dir, base, preprocess["artifacts"][base["name"]], threads, x, reference), threads,
            ctx.task.metric.name)
        write_layer_report(ctx, folder, x_t[:DEFAULT_IMAGES])
        return save_measurements(folder, build_measurements(ctx, rows, threads), teacher_graph(ctx, x_t[:1]))

    return run_stage("benchmark", VERSION, s.fingerprint(), inputs, ctx.out, body,
                     force=ctx.force or retry_failed(ctx.out, "benchmark", ctx.console), console=ctx.console)
