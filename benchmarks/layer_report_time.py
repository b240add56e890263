"""How long the per-layer INT8 report takes on a finished run (issue 21: <= 30 s for the digits student's four
files on 2 cores), and what it finds.

`edgekit inspect RUN --images 32` is timed as a user runs it (a new process: the converted PT2E graph is rebuilt
from the run's files, as in `edgekit benchmark RUN` alone; inside `compress` the quantize stage's graph is reused),
three times; then one in-process call gives the time per part and where the error enters in each file.

    python benchmarks/layer_report_time.py --run runs/default --name digits

Writes benchmarks/results/layer_report_<name>.json and .md.
"""

from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from app_clients import run_arguments, stamp, write_results  # noqa: E402

GOAL_S = 30.0
REPEATS = 3
IMAGES = 32


def _inspect_once(run: Path) -> tuple[float, float]:
    """(wall seconds of the command, seconds it reports for the report itself)."""
    edgekit = Path(sys.executable).parent / "edgekit"
    started = time.perf_counter()
    done = subprocess.run([str(edgekit), "inspect", str(run), "--images", str(IMAGES)], capture_output=True, text=True,
                          check=True)
    wall = time.perf_counter() - started
    inner = float(re.search(r"images in ([0-9.]+) s", done.stderr).group(1))
    return wall, inner


def measure(run: Path) -> dict:
    from edgekit.config import build_settings, recorded_settings
    from edgekit.layers.report import layer_report
    from edgekit.stages.context import StageContext

    load_before = os.getloadavg()
    timings = [_inspect_once(run) for _ in range(REPEATS)]
    ctx = StageContext(settings=build_settings(recorded_settings(run), {}), out=run)
    report = layer_report(run, ctx.task, ctx.eval_images()[:IMAGES])
    files = [{"name": f["name"], "precision": f["precision"], "error_enters": f.get("error_enters"),
              "last_layer_sqnr_fp32_db": f["layers"][-1]["sqnr_fp32_db"],
              "first_layer_sqnr_int8_db": f["layers"][0].get("sqnr_int8_db")} for f in report["files"]]
    return {"images": IMAGES, "layers": len(report["layers"]), "compared": [f["name"] for f in report["files"][1:]],
            "not_compared": report["not_compared"], "cli_wall_s": [round(w, 2) for w, _ in timings],
            "cli_report_s": [round(s, 2) for _, s in timings],
            "median_report_s": round(statistics.median(s for _, s in timings), 2),
            "median_wall_s": round(statistics.median(w for w, _ in timings), 2),
            "in_process_parts_s": report["seconds_by_part"], "files": files,
            "load_before": [round(v, 2) for v in load_before], "load_after": [round(v, 2) for v in os.getloadavg()]}


def render(result: dict) -> str:
    lines = [f"# Per-layer INT8 report: time and findings ({result['name']})", "",
             f"Command: `python benchmarks/layer_report_time.py --run RUN --name {result['name']}` on a run made by "
             f"`{result['run_command']}`  ",
             f"Date: {result['date']}  ", f"Commit: {result['commit']}  ",
             f"Machine: {result['machine']}; load average before {result['load_before']}, after {result['load_after']}",
             "", f"`edgekit inspect RUN --images {result['images']}`: {result['layers']} quantized layers, files "
             f"{', '.join(result['compared'])} (not compared: "
             f"{', '.join(s['name'] for s in result['not_compared']) or 'none'}).", "",
             "| Measure | Value |", "|---|---|",
             f"| report time (INT8 files, as `inspect` does), median of {REPEATS} (s) | {result['median_report_s']} |",
             f"| command wall time incl. start-up, median (s) | {result['median_wall_s']} |",
             f"| each run: report / wall (s) | {', '.join(f'{s} / {w}' for s, w in zip(result['cli_report_s'], result['cli_wall_s']))} |",
             f"| in-process, all four files (s) | {round(sum(result['in_process_parts_s'].values()), 2)} |",
             *(f"| in-process: {part} (s) | {sec} |" for part, sec in result["in_process_parts_s"].items()),
             "", "| File | Error enters at | Its own SQNR dB | Last layer vs FP32 dB | First layer vs PyTorch INT8 dB |",
             "|---|---|---|---|---|"]
    for f in result["files"]:
        e = f["error_enters"] or {}
        first = f["first_layer_sqnr_int8_db"]
        lines.append(f"| {f['name']} | {e.get('layer', '—')} | {e.get('own_sqnr_db', '—')} | "
                     f"{f['last_layer_sqnr_fp32_db']} | {first if first is not None else '—'} |")
    goal = result["check"]
    lines += ["", f"Goal: report time <= {GOAL_S:g} s: {goal['value']} s, {'PASS' if goal['pass'] else 'MISS'}.", ""]
    return "\n".join(lines)


def main() -> int:
    args = run_arguments(__doc__).parse_args()
    result = measure(args.run)
    stamp(result, args)
    result["machine"] = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}"
    result["check"] = {"value": result["median_report_s"], "pass": result["median_report_s"] <= GOAL_S}
    write_results(f"layer_report_{args.name}", result, render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
