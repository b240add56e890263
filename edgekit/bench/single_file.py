"""``edgekit benchmark MODEL.tflite|MODEL.onnx|MODEL.pte``: one file without its run, in its own runtime.

Size, graph, host latency (measured by the same self-contained runner a board uses), the target estimate
and, for ONNX, per-operator host times. A .pte has no graph summary and so no target estimate (as in a run);
its precision is read from its XNNPACK graphs. Accuracy needs the run directory (its test data); pass that instead.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from edgekit import __version__, registry
from edgekit.bench.budgets import merge_budgets
from edgekit.bench.final_report import REPORT_SCHEMA, assemble, write_reports
from edgekit.estimate.target_profiles import load_target
from edgekit.runtime.versions import host_info, library_versions
from edgekit.bench.threads import thread_counts
from edgekit.device.address import Device, parse_device
from edgekit.device.measure import measure_on_device
from edgekit.errors import EdgekitError
from edgekit.pipeline.fingerprint import file_sha256

FORMATS = {spec["suffix"]: (fmt, spec["runtime"]) for fmt, spec in registry.FORMATS.items()}  # suffix -> (format, runtime)


def check_model_file(path: Path) -> None:
    if not path.is_file():
        raise EdgekitError(f"model file {path} does not exist", "pass a .tflite, .onnx or .pte file, or a run directory")
    if path.suffix not in FORMATS:
        raise EdgekitError(f"{path} is not a .tflite, .onnx or .pte file",
                           "pass a model written by `edgekit export` or a run directory")


def _graph(path: Path) -> tuple[dict[str, Any] | None, str]:
    """The graph summary the estimate reads (None for a .pte: no estimator reads one) and the file's precision."""
    from edgekit.estimate.onnx_graph import graph_ops
    from edgekit.estimate.op_costs import summarize
    from edgekit.export.pte_format import precision

    try:
        if path.suffix == ".pte":
            return None, precision(path)
        graph = summarize(graph_ops(path))
        return graph, graph["precision"]
    except Exception as exc:  # noqa: BLE001 - any parser failure means the same thing to the user
        raise EdgekitError(f"{path} is not a readable {FORMATS[path.suffix][0]} model ({type(exc).__name__})",
                           "pass a model file written by `edgekit export` or another converter") from None


def _onnx_profile(path: Path, threads: int) -> dict[str, float]:
    import onnxruntime as ort

    from edgekit.bench.op_profile import onnx_op_times

    detail = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_inputs()[0]
    shape = [d if isinstance(d, int) and d > 0 else 1 for d in detail.shape]
    return onnx_op_times(path, np.random.default_rng(0).random(shape, dtype=np.float32), threads)


def benchmark_file(path: Path, target: str, threads: int | None, budget_items: list[str], device: str | None,
                   out: Path, runs: int) -> tuple[dict[str, Any], list[str]]:
    check_model_file(path)
    profile = load_target(target)
    budgets = merge_budgets(profile, budget_items)
    for key in ("accuracy", "agreement"):
        if key in budgets:
            raise EdgekitError(f"a {key} budget needs test data, and a single model file has none",
                               "benchmark the run directory instead (edgekit benchmark RUN_DIR)")
    remote = parse_device(device) if device else None
    graph, precision = _graph(path)
    if remote:
        from edgekit.device.measure import check_reachable

        check_reachable(remote)
    fmt, runtime = FORMATS[path.suffix]
    counts = thread_counts(threads, profile)
    host_threads = counts.host
    measured = measure_on_device(Device("local"), path, host_threads, runs=runs)
    artifact: dict[str, Any] = {
        "name": path.name, "format": fmt, "precision": precision, "status": "ok", "runtime": runtime,
        "path": str(path), "bytes": path.stat().st_size, "sha256": file_sha256(path), "accuracy": None, "agreement": None,
        "latency_ms": {"p50": measured["p50"], "p90": measured["p90"], "threads": host_threads, "runs": runs},
        "graph": graph}
    if fmt == "tflite":
        from edgekit.bench.size_breakdown import tflite_bytes

        artifact["size_breakdown"] = tflite_bytes(path)
    elif fmt == "onnx":
        artifact["host_op_ms"] = _onnx_profile(path, host_threads)
    measurements = {"schema": REPORT_SCHEMA, "edgekit_version": __version__,
                    "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "host": {**host_info(), "threads": host_threads}, "artifacts": [artifact],
                    "versions": library_versions()}
    est_threads = counts.target
    device_results = ({path.name: measure_on_device(remote, path, est_threads, runs=runs)} if remote else None)
    report = assemble(measurements, profile, est_threads, budget_items, device_results)
    out.mkdir(parents=True, exist_ok=True)
    return report, write_reports(out, report)
