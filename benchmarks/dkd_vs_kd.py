"""DKD against KD on the built-in digits, through INT8 TFLite: `edgekit compress --method kd` and `--method dkd`.

    python benchmarks/dkd_vs_kd.py [--out DIR] [--methods kd,dkd] [--teacher-from RUN_DIR] [--parallel]

Both runs use the defaults and the same seed, and learn from one teacher: the first run trains it, each
later run's folder links that teacher stage (so the students differ only by the method). Each run is the
real console command; its report.json gives the test accuracy of every artifact (FP32 and INT8, ONNX and
TFLite, each in its own runtime). Writes benchmarks/results/dkd_vs_kd.{json,md} with the commands, the
commit and the date. A folder given with --out keeps finished stages (fingerprints decide), so a cut-off
run resumes; the default is a fresh temporary folder. ``--teacher-from`` copies the finished teacher stage
of an earlier run with the same defaults (``edgekit tune`` or ``compress`` on the digits) into the first
folder: compress then checks its fingerprint and says ``teacher: up to date``, or trains a new one.
``--parallel`` runs the methods' commands at the same time once the teacher is there.
"""

from __future__ import annotations

import argparse
import json
import os
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


def commit() -> str:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "edgekit"], cwd=ROOT, capture_output=True, text=True)
    return head.stdout.strip() + (" (edgekit/ modified)" if dirty.stdout.strip() else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="run folders here (kept); default: a fresh temporary folder")
    parser.add_argument("--methods", default="kd,dkd")
    parser.add_argument("--teacher-from", type=Path, default=None, help="a run folder whose teacher stage to reuse")
    parser.add_argument("--parallel", action="store_true", help="run the methods at the same time")
    parser.add_argument("--note", default="", help="a sentence for the results (e.g. how the run was interrupted)")
    args = parser.parse_args()
    edgekit = Path(sys.executable).parent / "edgekit"
    base = args.out or Path(tempfile.mkdtemp(prefix="edgekit-dkd-"))
    methods = [m for m in args.methods.split(",") if m]
    first = base / methods[0]
    if args.teacher_from and not (first / "teacher").exists():
        first.mkdir(parents=True, exist_ok=True)
        shutil.copytree(args.teacher_from / "teacher", first / "teacher", symlinks=True)
    commands, walls, procs = {}, {}, {}
    for method in methods:
        out = base / method
        if method != methods[0] and not (out / "teacher").exists():
            out.mkdir(parents=True, exist_ok=True)
            os.symlink(os.path.relpath(first / "teacher", out), out / "teacher")
        commands[method] = ["edgekit", "compress", "--method", method, "--seed", "0", "--out", str(out)]
    if not (first / "teacher" / "stage.json").is_file():  # the teacher first, alone
        subprocess.run([str(edgekit), "teacher", "--seed", "0", "--out", str(first)], check=True)
    started = {}
    for method in methods:
        started[method] = time.perf_counter()
        procs[method] = subprocess.Popen([str(edgekit), *commands[method][1:]])
        if not args.parallel:
            walls[method] = _wait(procs[method], started[method])
    for method in methods:
        if method not in walls:
            walls[method] = _wait(procs[method], started[method])
    rows = []
    for method in methods:
        out = base / method
        report = json.loads((out / "report.json").read_text())
        arts = {a["name"]: a for a in report["artifacts"]}
        distill = json.loads((out / "distill" / "stage.json").read_text())["result"]
        rows.append({"method": method, "command": " ".join(commands[method][:-1]) + " <folder>", "wall_seconds": walls[method],
                     "temperature": distill["temperature"], "alpha": distill["alpha"],
                     "student_pytorch_fp32": report["students"][0]["accuracy"],
                     "tflite_fp32": arts["model_fp32.tflite"]["accuracy"], "tflite_int8": arts["model_int8.tflite"]["accuracy"],
                     "onnx_int8": arts["model_int8.onnx"]["accuracy"],
                     "distill_loss_last_epoch": distill["history"][-1],
                     "stage_seconds": {k: v["seconds"] for k, v in report["stages"].items()}})
        print(json.dumps(rows[-1]), flush=True)
    teacher = report["teacher"]
    result = {"script": "python benchmarks/dkd_vs_kd.py " + " ".join(sys.argv[1:]),
              "teacher_stage": (f"copied from {args.teacher_from} (an earlier run with the same defaults; its fingerprint "
                                "was checked by compress)") if args.teacher_from else "trained by the first run",
              "parallel": args.parallel, "note": args.note,
              "commit": commit(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": {**report["host"], "python": platform.python_version()},
              "teacher": {k: teacher.get(k) for k in ("arch", "params", "accuracy")}, "rows": rows}
    if "kd" in methods and "dkd" in methods:
        kd, dkd = (next(r for r in rows if r["method"] == m) for m in ("kd", "dkd"))
        result["dkd_minus_kd_int8_tflite_points"] = round(100 * (dkd["tflite_int8"] - kd["tflite_int8"]), 2)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "dkd_vs_kd.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "dkd_vs_kd.md").write_text(markdown(result))
    print(markdown(result))
    if args.out is None:
        shutil.rmtree(base, ignore_errors=True)
    return 0


def _wait(proc: subprocess.Popen, started: float) -> float:
    if proc.wait() != 0:
        raise SystemExit(f"{' '.join(proc.args)} exited {proc.returncode}")
    return round(time.perf_counter() - started, 1)


def markdown(r: dict) -> str:
    m = r["machine"]
    lines = ["# DKD against KD on the built-in digits, through INT8", "",
             f"Made by `{r['script']}` at commit {r['commit']}, {r['date']}.  ",
             f"Machine: {m.get('cpu')}, {m.get('cores')} cores, Python {m['python']}; the cores were shared with "
             "other jobs, so the seconds are not from a quiet machine.  ",
             f"Teacher (one, shared by the runs; {r['teacher_stage']}): {r['teacher']['arch']}, "
             f"{r['teacher']['params']:,} parameters, test accuracy {100 * r['teacher']['accuracy']:.2f} %. "
             + ("The runs ran at the same time." if r["parallel"] else "The runs ran one after the other."), "",
             "| Method | Command | T | alpha | PyTorch FP32 % | TFLite FP32 % | TFLite INT8 % | ONNX INT8 % | wall s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for x in r["rows"]:
        lines.append(f"| {x['method']} | `{x['command']}` | {x['temperature']} | {x['alpha']} | "
                     f"{100 * x['student_pytorch_fp32']:.2f} | {100 * x['tflite_fp32']:.2f} | {100 * x['tflite_int8']:.2f} | "
                     f"{100 * x['onnx_int8']:.2f} | {x['wall_seconds']} |")
    if r.get("note"):
        lines += ["", f"Note: {r['note']}"]
    if "dkd_minus_kd_int8_tflite_points" in r:
        lines += ["", f"DKD minus KD, INT8 TFLite test accuracy: {r['dkd_minus_kd_int8_tflite_points']:+.2f} points."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
