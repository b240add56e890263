"""Stage 4: self-contained files (ONNX, TFLite and ExecuTorch, FP32 and INT8), labels, preprocess.json, parity.

Each file is built by its format's function (export/formats.py) and fails alone (as in Ultralytics'
exporter): a failed conversion is recorded with its error, and the other files are still written. Every
file carries its own copy of the recipe (ONNX metadata; a .pte's ``edgekit_preprocess`` method; in a .tflite
an ``edgekit.preprocess`` buffer beside the standard TFLite metadata and its labels file, which MediaPipe Tasks
read) and is checked against the PyTorch model it came from, run the way preprocess.json tells an app to run it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.runtime.runners import open_runner
from edgekit.export.artifact_meta import (LABELS_FILE, PREPROCESS_FILE, embedded_document, input_feed, labels_text,
                                          preprocess_document)
from edgekit.export.formats import FileJob, planned_entry, write_file
from edgekit.registry import ARTIFACTS
from edgekit.export.guarded import FAILED_FILES, failed_names, guarded_export, retry_failed
from edgekit.export.tflite_metadata import write_tflite_metadata
from edgekit.models.predictions import load_outputs
from edgekit.quantize.saved_graph import load_prepared_module
from edgekit.pipeline.atomic import write_json_atomic, write_text_atomic
from edgekit.pipeline.runner import read_stage, run_stage, stage_dir
from edgekit.quantize import pt2e
from edgekit.quantize.converted_cache import converted_graph
from edgekit.quantize.keep_float import keep_float
from edgekit.widen.run import keep_float_for_goal, widen_line
from edgekit.stages.context import StageContext

VERSION = "10"  # 2: int8 initializers not shared between nodes; session_config in preprocess.json. 3: one chain for every task; detection ONNX files carry the recipe. 4: standard TFLite metadata and labels inside; INT8 .tflite takes raw uint8 pixels (--io). 5: INT8 ONNX activations uint8 (onnx_uint8_activations.py). 5: ExecuTorch .pte files. 6: layers kept float for an accuracy goal (edgekit/widen/). 7: ONNX files without the exporter's per-node trace metadata. 8: detection recipe says one box per location. 9: the fallback leaves out kept layers the goal no longer needs. 10: detection images letterboxed (preprocess.json resize)
PARITY_IMAGES = 64


def run(ctx: StageContext) -> dict[str, Any]:
    ctx = ctx.for_stage("export")
    s, task = ctx.settings, ctx.task
    read_stage(ctx.out, "quantize")
    distill_dir, quantize_dir = stage_dir(ctx.out, "distill"), stage_dir(ctx.out, "quantize")
    inputs = {"data": ctx.data.identity, "student": distill_dir, "quantize": quantize_dir}

    def body(folder: Path) -> dict[str, Any]:
        spec, classes = ctx.spec, ctx.data.classes
        student = task.load_student(distill_dir)
        int8 = converted_graph(quantize_dir, lambda: pt2e.convert(load_prepared_module(student, quantize_dir, s.size)))
        reference = {"fp32": load_outputs(distill_dir), "int8": load_outputs(quantize_dir)}
        x_parity = ctx.eval_images()[:PARITY_IMAGES]
        widened = keep_float_for_goal(ctx, int8, student)
        kept = widened["kept_float"] if widened else []
        if widened is not None:
            ctx.console.print(widen_line(widened))
        if kept:
            int8 = keep_float(int8, kept)
            reference["int8"] = task.outputs(int8, x_parity)  # the files' own graph, not the integer one
        models = {"fp32": student, "int8": int8, "int8_folded": pt2e.fold_weights(int8)}
        extra = task.document_extra(classes)
        entries: dict[str, dict[str, Any]] = {}
        results: list[dict[str, Any]] = []
        for art in ARTIFACTS:
            def build(path: Path, art: dict[str, str] = art) -> tuple[dict[str, Any], str]:
                metadata = {"edgekit.preprocess": embedded_document(spec, classes, path.name,
                                                                    planned_entry(art["format"], task.output_names),
                                                                    extra)}
                write_file(art, models, FileJob(path, x_parity[:1], spec, list(task.output_names),
                                                art["precision"] == "int8", s.io, metadata,
                                                float_layers=bool(kept)))
                entry = task.io_entry(path, classes)
                entry["input_feed"] = input_feed(entry)
                if art["format"] == "tflite":
                    order = sorted(entry["outputs"], key=lambda name: entry["outputs"][name]["index"])
                    write_tflite_metadata(path, recipe=embedded_document(spec, classes, path.name, entry, extra),
                                          kind=task.model_kind, classes=classes, entry=entry, spec=spec,
                                          outputs={name: task.output_descriptions[name] for name in order})
                entries[path.name] = entry
                outputs = open_runner(path, entry, threads=1).outputs(x_parity.numpy())
                return task.parity(outputs, reference[art["precision"]])

            results.append(guarded_export({k: art[k] for k in ("name", "format", "precision")}, folder / art["name"],
                                          build, ctx.console))
        entries = {r["name"]: entries[r["name"]] for r in results if r["status"] == "ok"}  # no recipe for a failed file
        write_text_atomic(folder / LABELS_FILE, labels_text(classes))
        write_json_atomic(folder / PREPROCESS_FILE, preprocess_document(spec, entries, extra))
        return {"artifacts": results, FAILED_FILES: failed_names(results), "kept_float": widened}

    return run_stage("export", VERSION, s.fingerprint(), inputs, ctx.out, body,
                     force=ctx.force or retry_failed(ctx.out, "export", ctx.console), console=ctx.console)
