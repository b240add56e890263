"""After the benchmark stage: device measurements (``--device``), the target estimate, budgets, and the
reports at the top of --out. Not cached: it is cheap and its inputs (target, budgets, device) change freely."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgekit.bench.final_report import finalize_run
from edgekit.device.address import parse_device
from edgekit.device.measure import measure_on_device
from edgekit.errors import EdgekitError
from edgekit.export.guarded import failure_lines
from edgekit.layers.report import LAYERS_FILE
from edgekit.pipeline.runner import read_stage, stage_dir
from edgekit.stages.benchmark import MEASUREMENTS
from edgekit.stages.context import StageContext
from edgekit.stages.student_choice import read_choice


def _run_student(ctx: StageContext) -> tuple[str, float, int] | None:
    """The trained student (arch, width, input size), from the distill stage's record."""
    try:
        result = read_stage(ctx.out, "distill")["result"]
        return result["arch"], float(result["width"]), int(ctx.settings.size)
    except (EdgekitError, KeyError, TypeError, ValueError):
        return None


def _layers(folder: Path) -> dict[str, Any] | None:
    """benchmark/layers.json, when this run's benchmark wrote one."""
    try:
        return json.loads((folder / LAYERS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _kept_float(ctx: StageContext) -> dict[str, Any] | None:
    """The export stage's accuracy-goal record (layers kept float), when the run set a goal."""
    try:
        return read_stage(ctx.out, "export")["result"].get("kept_float")
    except (EdgekitError, KeyError, TypeError):
        return None


def run(ctx: StageContext) -> dict[str, Any]:
    ctx = ctx.for_stage("benchmark")
    s = ctx.settings
    folder = stage_dir(ctx.out, "benchmark")
    measurements = json.loads((folder / MEASUREMENTS).read_text(encoding="utf-8"))
    device_results = None
    if s.device:
        from edgekit.estimate.target_profiles import load_target
        from edgekit.bench.threads import thread_counts

        device = parse_device(s.device)
        threads = thread_counts(s.threads, load_target(s.target)).target
        device_results = {}
        for a in measurements["artifacts"]:
            if a["status"] == "ok":
                ctx.console.print(f"device: measuring {a['name']} on {device.describe()} ({threads} threads)")
                device_results[a["name"]] = measure_on_device(device, stage_dir(ctx.out, "export") / a["name"], threads,
                                                              runs=s.latency_runs)
    report, failures = finalize_run(ctx.out, folder / MEASUREMENTS, s.target, s.threads, s.budget, device_results,
                                    read_choice(ctx.out), _run_student(ctx), _layers(folder), _kept_float(ctx),
                                    ctx.task.useful_level(len(measurements["data"]["classes"])))
    for line in report.get("learned_little", []):
        ctx.console.print(f"warning: {line}", markup=False, highlight=False, soft_wrap=True)
    for a in report["artifacts"]:
        est = a.get("target_estimate")
        if est:
            ctx.console.print(f"estimate: {a['name']} on {report['target']['name']}: {est['ms']:.2f} ms "
                              f"± {est['band_pct']:.0f} % ({est['threads']} threads), {a['target_fps']:.1f} FPS")
        elif a.get("target_estimate_note"):
            ctx.console.print(f"estimate: {a['name']} on {report['target']['name']}: {a['target_estimate_note']}")
    return {"failures": failures, "failed_files": failure_lines(report["artifacts"], ctx.out), "deploy": report["deploy"]}
