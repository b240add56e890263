"""The target picks the student, measured: the CIFAR-10 budget run at latency budgets of 2, 5, 10 and 20 ms on a target,
each with the student edgekit chooses (``--student auto``), against the fixed default student (x0.35 at 32 px).

For each budget the plan is read from ``edgekit compress --dry-run`` (what a user sees); budgets that choose the same
student share one run (the choice, not the budget, decides what is trained). Runs at the same input size share the
teacher: its folder is copied into the next run, where the teacher stage finds it up to date (same settings, same
data). Every run is an ordinary ``edgekit compress`` and resumes where it stopped when this script is run again.

    python benchmarks/student_budgets.py --data benchmarks/.cache/cifar10-1000-1000 \\
        --config benchmarks/cifar10_budget.toml --runs RUNS_DIR [--default-run DIR] [--budgets 2 5 10 20]

Goal (issue 20): every chosen student's final INT8 TFLite estimate within its budget; a looser budget never gives a
less accurate student; at the loosest budget the chosen student beats the default by >= 3 points.
Writes benchmarks/results/student_budgets_<name>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
EDGEKIT = Path(sys.executable).with_name("edgekit")
GOAL_POINTS = 3.0
PLAN_LINE = re.compile(r"^student: (\S+) x(\S+) at (\d+) px \((.*)\)$", re.M)


def edgekit(args: list[str], log: Path | None = None) -> subprocess.CompletedProcess:
    if log is None:
        return subprocess.run([str(EDGEKIT), *args], capture_output=True, text=True, cwd=ROOT)
    with open(log, "a", encoding="utf-8") as handle:
        return subprocess.run([str(EDGEKIT), *args], stdout=handle, stderr=subprocess.STDOUT, text=True, cwd=ROOT)


def plan(common: list[str], budget: float) -> tuple[str, float, int]:
    """The student ``--student auto`` chooses for this budget, from the dry run's plan."""
    result = edgekit(["compress", *common, "--budget", f"latency_ms={budget:g}", "--dry-run",
                      "--out", str(ROOT / "benchmarks" / ".cache" / "dry-run")])
    match = PLAN_LINE.search(result.stdout)
    if result.returncode != 0 or not match:
        raise SystemExit(f"dry run for {budget} ms failed ({result.returncode}): {result.stderr.strip()[-500:]}")
    return match.group(1), float(match.group(2)), int(match.group(3))


def run_dir(runs: Path, student: tuple[str, float, int]) -> Path:
    return runs / f"{student[0]}-x{student[1]:g}-{student[2]}px"


def share_teacher(runs: Path, target_dir: Path, size: int) -> None:
    """Copy a finished teacher trained at the same size into a run that has none (its stage finds it up to date)."""
    if (target_dir / "teacher" / "stage.json").is_file():
        return
    for other in sorted(runs.glob(f"*-{size}px")):
        if other != target_dir and (other / "teacher" / "stage.json").is_file():
            target_dir.mkdir(parents=True, exist_ok=True)
            shutil.copytree(other / "teacher", target_dir / "teacher")
            return


def compress(common: list[str], out: Path, extra: list[str]) -> dict[str, Any]:
    """Run (or resume) one compress; the report it leaves. Exit 1 (a budget missed by some file) still reports."""
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result = edgekit(["compress", *common, *extra, "--out", str(out)], log=out.parent / f"{out.name}.log")
    if result.returncode not in (0, 1):
        raise SystemExit(f"edgekit compress --out {out} failed ({result.returncode}); see {out.parent / (out.name + '.log')}")
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    report["_wall_s"] = round(time.perf_counter() - started, 1)
    return report


def int8_tflite(report: dict[str, Any]) -> dict[str, Any]:
    return next(a for a in report["artifacts"] if a["name"] == "model_int8.tflite")


def stage_seconds(out: Path) -> float:
    total = 0.0
    for folder in ("teacher", "distill", "quantize", "artifacts", "benchmark"):
        try:
            total += json.loads((out / folder / "stage.json").read_text(encoding="utf-8"))["seconds"]
        except (OSError, ValueError, KeyError):
            pass
    return round(total, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--target", default="rpi4")
    parser.add_argument("--runs", type=Path, required=True, help="where the runs go (one per distinct student)")
    parser.add_argument("--default-run", type=Path, help="a finished run of the default student (else made in --runs)")
    parser.add_argument("--budgets", type=float, nargs="+", default=[2, 5, 10, 20])
    parser.add_argument("--name", default="cifar10")
    args = parser.parse_args()
    common = ["--data", args.data, "--config", args.config, "--target", args.target]
    picks = {budget: plan(common, budget) for budget in args.budgets}
    for budget, student in picks.items():
        print(f"{budget:g} ms -> {student[0]} x{student[1]:g} @ {student[2]} px", flush=True)
    reports: dict[tuple[str, float, int], dict[str, Any]] = {}
    for budget in sorted(args.budgets):
        student = picks[budget]
        if student in reports:
            continue
        out = run_dir(args.runs, student)
        share_teacher(args.runs, out, student[2])
        reports[student] = compress(common, out, ["--budget", f"latency_ms={budget:g}"])
    default_out = args.default_run or args.runs / "default"
    default = compress(common, default_out, []) if args.default_run is None or not (default_out / "report.json").is_file() \
        else json.loads((default_out / "report.json").read_text(encoding="utf-8"))
    rows = []
    for budget in sorted(args.budgets):
        student = picks[budget]
        report = reports[student]
        int8 = int8_tflite(report)
        choice = report.get("student_choice") or {}
        check = choice.get("after_training") or {}
        rows.append({"budget_ms": budget, "student": f"{student[0]} x{student[1]:g} @ {student[2]} px",
                     "pre_training_estimate_ms": check.get("pre_training_estimate_ms"),
                     "int8_tflite_estimate_ms": int8["target_estimate"]["ms"], "band_pct": int8["target_estimate"]["band_pct"],
                     "within_budget": int8["target_estimate"]["ms"] <= budget, "int8_tflite_accuracy": int8["accuracy"],
                     "bytes": int8["bytes"], "run": str(run_dir(args.runs, student)),
                     "run_seconds": stage_seconds(run_dir(args.runs, student))})
    d_int8 = int8_tflite(default)
    accuracies = [r["int8_tflite_accuracy"] for r in rows]
    result = {
        "command": "python benchmarks/student_budgets.py " + " ".join(sys.argv[1:]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip(),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores", "target": args.target,
        "rows": rows,
        "default": {"student": "mobilenet_v2 x0.35 @ 32 px", "int8_tflite_estimate_ms": d_int8["target_estimate"]["ms"],
                    "int8_tflite_accuracy": d_int8["accuracy"], "bytes": d_int8["bytes"], "run": str(default_out)},
        "checks": {"all_within_budget": all(r["within_budget"] for r in rows),
                   "monotone": all(b >= a for a, b in zip(accuracies, accuracies[1:])),
                   "loosest_minus_default_points": round(100 * (accuracies[-1] - d_int8["accuracy"]), 2)},
    }
    result["checks"]["loosest_beats_default_by_3"] = result["checks"]["loosest_minus_default_points"] >= GOAL_POINTS
    stem = f"student_budgets_{args.name}"
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    (RESULTS / f"{stem}.md").write_text(render(result), encoding="utf-8")
    print(render(result))
    return 0


def render(r: dict[str, Any]) -> str:
    c = r["checks"]
    lines = [f"# The target picks the student: {r['target']}, CIFAR-10 budget run", "",
             f"Command: `{r['command']}`  ", f"Date: {r['date']}  ", f"Commit: {r['commit']}  ", f"Machine: {r['machine']}", "",
             "Each budget's student is the one `edgekit compress --budget latency_ms=X --dry-run` plans (`--student auto`); "
             "budgets that choose the same student share its run. Accuracy: the INT8 TFLite file on all 10,000 test "
             "images in LiteRT, as the benchmark stage measures it.", "",
             "| Budget ms | Student | Estimate before training ms | INT8 TFLite estimate ms | Within | INT8 TFLite accuracy | Size KiB |",
             "|---|---|---|---|---|---|---|"]
    for row in r["rows"]:
        pre = f"{row['pre_training_estimate_ms']:.2f}" if row["pre_training_estimate_ms"] is not None else "—"
        lines.append(f"| {row['budget_ms']:g} | {row['student']} | {pre} | {row['int8_tflite_estimate_ms']:.2f} ± "
                     f"{row['band_pct']:.0f} % | {'yes' if row['within_budget'] else 'NO'} | "
                     f"{100 * row['int8_tflite_accuracy']:.2f} % | {row['bytes'] / 1024:.0f} |")
    d = r["default"]
    lines += [f"| (none) | {d['student']} (default) | — | {d['int8_tflite_estimate_ms']:.2f} | — | "
              f"{100 * d['int8_tflite_accuracy']:.2f} % | {d['bytes'] / 1024:.0f} |", "",
              f"- Every chosen student's INT8 TFLite estimate within its budget: {'PASS' if c['all_within_budget'] else 'MISS'}",
              f"- A looser budget never gives a less accurate student: {'PASS' if c['monotone'] else 'MISS'}",
              f"- Loosest budget's student vs the default: {c['loosest_minus_default_points']:+.2f} points (goal >= +3): "
              f"{'PASS' if c['loosest_beats_default_by_3'] else 'MISS'}", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
