"""The default job, measured: `edgekit compress --target rpi4` on the built-in digits, from scratch.

Runs the real console command in a fresh output folder, times it (wall clock), reads report.json
and checks each number the classification issue sets. Writes benchmarks/results/digits.json and
digits.md with the command, the machine and the date.

    python benchmarks/digits_compress.py [--runs 3]

Each run is timed from scratch in a fresh folder. A run is marked quiet when the 1-minute load average
before it was under QUIET_LOAD (nothing else was using the cores); a timing from a run that was not quiet
says so wherever this file shows it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
COMMAND = ["edgekit", "compress", "--target", "rpi4"]
QUIET_LOAD = 0.7


def one_run(edgekit: Path) -> dict:
    """One `edgekit compress` from scratch in a fresh folder, then the same command again (all up to date)."""
    out = Path(tempfile.mkdtemp(prefix="edgekit-digits-")) / "run"
    settle = time.monotonic() + 180  # the 1-minute load average still holds the previous run for a while
    while os.getloadavg()[0] >= QUIET_LOAD and time.monotonic() < settle:
        time.sleep(5)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    subprocess.run([str(edgekit), *COMMAND[1:], "--out", str(out)], check=True)
    wall = time.perf_counter() - started
    load_after = os.getloadavg()[0]
    started = time.perf_counter()  # the same command again: every stage must be up to date
    rerun = subprocess.run([str(edgekit), *COMMAND[1:], "--out", str(out)], check=True, capture_output=True, text=True)
    rerun_wall = time.perf_counter() - started
    report = json.loads((out / "report.json").read_text())
    shutil.rmtree(out.parent, ignore_errors=True)
    return {"wall_seconds": round(wall, 1), "rerun_wall_seconds": round(rerun_wall, 1),
            "up_to_date": sum(line.endswith(": up to date") for line in rerun.stderr.splitlines()),
            # The 1-minute load average before the run: above QUIET_LOAD, other work shared the cores.
            "load_before": round(load_before, 2), "load_after": round(load_after, 2),
            "quiet": load_before < QUIET_LOAD,
            "stage_seconds": {k: v["seconds"] for k, v in report["stages"].items()}, "report": report}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="independent runs from scratch (each timed)")
    args = parser.parse_args()
    edgekit = Path(sys.executable).parent / "edgekit"
    runs = []
    for i in range(args.runs):
        runs.append(one_run(edgekit))
        print(f"run {i + 1}: {runs[-1]['wall_seconds']} s (load before {runs[-1]['load_before']})", flush=True)
    report = runs[0]["report"]
    arts = {a["name"]: a for a in report["artifacts"]}
    teacher, student = report["teacher"], report["students"][0]
    int8_tfl, fp32_tfl = arts["model_int8.tflite"], arts["model_fp32.tflite"]
    walls = [r["wall_seconds"] for r in runs]
    checks = {
        "teacher accuracy >= 0.97": (teacher["accuracy"], teacher["accuracy"] >= 0.97),
        **{f"test accuracy {n} >= 0.97": (a["accuracy"], a["accuracy"] >= 0.97) for n, a in arts.items()},
        "INT8 TFLite within 2 points of teacher": (teacher["accuracy"] - int8_tfl["accuracy"],
                                                   teacher["accuracy"] - int8_tfl["accuracy"] <= 0.02),
        "student params <= teacher / 10": (student["params"] / teacher["params"],
                                           student["params"] * 10 <= teacher["params"]),
        "INT8 TFLite bytes <= 0.40 x FP32 TFLite": (int8_tfl["bytes"] / fp32_tfl["bytes"],
                                                    int8_tfl["bytes"] <= 0.40 * fp32_tfl["bytes"]),
        **{f"agreement {n} >= 0.995": (a["agreement"], a["agreement"] >= 0.995) for n, a in arts.items()},
        **{f"run {i + 1} wall time <= 300 s": (w, w <= 300) for i, w in enumerate(walls)},
        "every run on quiet cores": (sum(r["quiet"] for r in runs), all(r["quiet"] for r in runs)),
        "same accuracies in every run": (len(runs), all(
            [a["accuracy"] for a in r["report"]["artifacts"]] == [a["accuracy"] for a in report["artifacts"]]
            for r in runs)),
        "rerun: all 5 stages up to date": (min(r["up_to_date"] for r in runs), all(r["up_to_date"] == 5 for r in runs)),
    }
    result = {
        "command": " ".join(COMMAND) + " --out <fresh folder>",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {**report["host"], "python": platform.python_version()},
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                 text=True).stdout.strip(),
        "runs": [{k: v for k, v in r.items() if k != "report"} for r in runs],
        "wall_seconds": round(statistics.median(walls), 1),
        "rerun_wall_seconds": runs[0]["rerun_wall_seconds"],
        "stage_seconds": runs[0]["stage_seconds"],
        "teacher": teacher, "students": report["students"],
        "artifacts": [{k: a.get(k) for k in ("name", "bytes", "accuracy", "agreement", "latency_ms", "size_breakdown",
                                             "target_estimate_ms", "target_band_pct")}
                      for a in report["artifacts"]],
        "deploy": report["deploy"],
        "checks": {k: {"value": round(v, 5), "pass": ok} for k, (v, ok) in checks.items()},
        "versions": report["versions"],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "digits.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "digits.md").write_text(render(result))
    print(render(result))
    return 0


def render(r: dict) -> str:
    lines = ["# Built-in digits: `edgekit compress --target rpi4`", "",
             f"Command: `{r['command']}` (run by `python benchmarks/digits_compress.py`)  ",
             f"Date: {r['date']}  ",
             f"Machine: {r['machine']['cpu']}, {r['machine']['cores']} cores; latency threads {r['machine']['threads']}  ",
             f"Commit: {r['commit']}  ",
             f"Second identical run (all stages up to date): {r['rerun_wall_seconds']} s  ",
             f"Wall time, median of {len(r['runs'])} runs from scratch: {r['wall_seconds']} s; "
             "runs: " + ", ".join(f"{x['wall_seconds']} s ({'quiet' if x['quiet'] else 'NOT QUIET'}, load "
                                  f"{x['load_before']} before)" for x in r["runs"]) + "  ",
             "Stages of run 1: " + ", ".join(f"{k} {v:.0f} s" for k, v in r["stage_seconds"].items()), "",
             "| File | Size KiB | Test accuracy % | Agreement with PyTorch % | Host ms p50 / p90 | rpi4 estimate ms (4 threads) |",
             "|---|---|---|---|---|---|"]
    for a in r["artifacts"]:
        lat = a["latency_ms"]
        estimate = (f"{a['target_estimate_ms']:.2f} ± {a['target_band_pct']:.0f} %" if a.get("target_estimate_ms")
                    is not None else "— (no estimator reads this format)")
        lines.append(f"| {a['name']} | {a['bytes'] / 1024:.1f} | {100 * a['accuracy']:.2f} | {100 * a['agreement']:.2f} | "
                     f"{lat['p50']:.3f} / {lat['p90']:.3f} | {estimate} |")
    lines += ["", f"Deploy this one: `{r['deploy']['name']}` ({r['deploy']['why']})."]
    t = r["teacher"]
    lines += ["", f"Teacher {t['arch']}: {t['params']:,} parameters, test accuracy {100 * t['accuracy']:.2f} %.  ",
              "Students: " + "; ".join(f"{s['name']} {100 * s['accuracy']:.2f} %" for s in r["students"])
              + f" ({r['students'][0]['params']:,} parameters).", "",
              "| Check | Value | Pass |", "|---|---|---|"]
    lines += [f"| {k} | {v['value']} | {'yes' if v['pass'] else 'NO'} |" for k, v in r["checks"].items()]
    for a in r["artifacts"]:
        if a.get("size_breakdown"):
            lines += ["", f"Where the bytes of {a['name']} go: "
                      + ", ".join(f"{k} {v / 1024:.1f} KiB" for k, v in a["size_breakdown"].items())]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] == ["--render"]:  # the tables again from digits.json, without running anything
        (RESULTS / "digits.md").write_text(render(json.loads((RESULTS / "digits.json").read_text())))
        sys.exit(0)
    sys.exit(main())
