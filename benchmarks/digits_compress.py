"""The default job, measured: `edgekit compress --target rpi4` on the built-in digits, from scratch.

Runs the real console command in a fresh output folder, times it (wall clock), reads report.json
and checks each number the classification issue sets. Writes benchmarks/results/digits.json and
digits.md with the command, the machine and the date.

    python benchmarks/digits_compress.py
"""

from __future__ import annotations

import json
import platform
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


def main() -> int:
    edgekit = Path(sys.executable).parent / "edgekit"
    out = Path(tempfile.mkdtemp(prefix="edgekit-digits-")) / "run"
    started = time.perf_counter()
    subprocess.run([str(edgekit), *COMMAND[1:], "--out", str(out)], check=True)
    wall = time.perf_counter() - started
    started = time.perf_counter()  # the same command again: every stage must be up to date
    rerun = subprocess.run([str(edgekit), *COMMAND[1:], "--out", str(out)], check=True, capture_output=True, text=True)
    rerun_wall = time.perf_counter() - started
    up_to_date = sum(line.endswith(": up to date") for line in rerun.stderr.splitlines())
    report = json.loads((out / "report.json").read_text())
    arts = {a["name"]: a for a in report["artifacts"]}
    teacher, student = report["teacher"], report["students"][0]
    int8_tfl, fp32_tfl = arts["model_int8.tflite"], arts["model_fp32.tflite"]
    checks = {
        "teacher accuracy >= 0.97": (teacher["accuracy"], teacher["accuracy"] >= 0.97),
        "INT8 TFLite within 2 points of teacher": (teacher["accuracy"] - int8_tfl["accuracy"],
                                                   teacher["accuracy"] - int8_tfl["accuracy"] <= 0.02),
        "student params <= teacher / 10": (student["params"] / teacher["params"],
                                           student["params"] * 10 <= teacher["params"]),
        "INT8 TFLite bytes <= 0.40 x FP32 TFLite": (int8_tfl["bytes"] / fp32_tfl["bytes"],
                                                    int8_tfl["bytes"] <= 0.40 * fp32_tfl["bytes"]),
        **{f"agreement {n} >= 0.995": (a["agreement"], a["agreement"] >= 0.995) for n, a in arts.items()},
        "wall time <= 300 s": (wall, wall <= 300),
        "rerun: all 5 stages up to date": (up_to_date, up_to_date == 5),
    }
    result = {
        "command": " ".join(COMMAND) + " --out <fresh folder>",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {**report["host"], "python": platform.python_version()},
        "wall_seconds": round(wall, 1),
        "rerun_wall_seconds": round(rerun_wall, 1),
        "stage_seconds": {k: v["seconds"] for k, v in report["stages"].items()},
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
    shutil.rmtree(out.parent, ignore_errors=True)
    return 0


def render(r: dict) -> str:
    lines = ["# Built-in digits: `edgekit compress --target rpi4`", "",
             f"Command: `{r['command']}` (run by `python benchmarks/digits_compress.py`)  ",
             f"Date: {r['date']}  ",
             f"Machine: {r['machine']['cpu']}, {r['machine']['cores']} cores; latency threads {r['machine']['threads']}  ",
             f"Second identical run (all stages up to date): {r['rerun_wall_seconds']} s  ",
             f"Wall time: {r['wall_seconds']} s (stages: "
             + ", ".join(f"{k} {v:.0f} s" for k, v in r["stage_seconds"].items()) + ")", "",
             "| File | Size KiB | Test accuracy % | Agreement with PyTorch % | Host ms p50 / p90 | rpi4 estimate ms (4 threads) |",
             "|---|---|---|---|---|---|"]
    for a in r["artifacts"]:
        lat = a["latency_ms"]
        lines.append(f"| {a['name']} | {a['bytes'] / 1024:.1f} | {100 * a['accuracy']:.2f} | {100 * a['agreement']:.2f} | "
                     f"{lat['p50']:.3f} / {lat['p90']:.3f} | {a['target_estimate_ms']:.2f} ± {a['target_band_pct']:.0f} % |")
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
    sys.exit(main())
