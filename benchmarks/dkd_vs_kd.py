"""DKD against KD on the built-in digits, through INT8 TFLite: `edgekit compress --method kd` and `--method dkd`.

    python benchmarks/dkd_vs_kd.py [--out DIR] [--methods kd,dkd] [--seeds 0,1,2]
                                   [--teacher FILE | --teacher-from RUN_DIR] [--parallel]

Every run uses the defaults and learns from one teacher, so the students differ only by method and seed.
``--teacher FILE`` hands every run the same teacher weights (a ``.safetensors`` of an earlier run's teacher
stage) through ``--teacher``, the way a user brings one. Without it, the first method of each seed trains
the teacher (or ``--teacher-from`` copies the finished teacher stage of an earlier run with the same
defaults; compress checks its fingerprint) and the seed's other methods link that stage. Each run is the
real console command; its report.json gives the test accuracy of every artifact (FP32 and INT8, ONNX and
TFLite, each in its own runtime). Writes benchmarks/results/dkd_vs_kd.{json,md} with the commands, the
commit, the date, each method's mean over the seeds and DKD minus KD per seed. A folder given with
--out keeps finished stages (fingerprints decide), so a cut-off run resumes; the default is a fresh
temporary folder. ``--parallel`` runs a seed's methods at the same time once its teacher is there.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
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
    parser.add_argument("--seeds", default="0", help="comma-separated seeds; every method runs at each")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--teacher", type=Path, default=None, help="teacher weights every run is given (--teacher)")
    source.add_argument("--teacher-from", type=Path, default=None, help="a run folder whose teacher stage to reuse")
    parser.add_argument("--parallel", action="store_true", help="run a seed's methods at the same time")
    parser.add_argument("--note", default="", help="a sentence for the results (e.g. how the run was interrupted)")
    args = parser.parse_args()
    edgekit = Path(sys.executable).parent / "edgekit"
    base = args.out or Path(tempfile.mkdtemp(prefix="edgekit-dkd-"))
    methods = [m for m in args.methods.split(",") if m]
    seeds = [int(x) for x in args.seeds.split(",") if x]
    rows = []
    for seed in seeds:
        folders = {m: base / (m if seeds == [0] and not args.teacher else f"{m}-seed{seed}") for m in methods}
        commands = {m: ["edgekit", "compress", "--method", m, "--seed", str(seed)]
                    + (["--teacher", str(args.teacher)] if args.teacher else []) + ["--out", str(folders[m])]
                    for m in methods}
        if not args.teacher:
            _share_teacher(edgekit, folders, methods, seed, args.teacher_from if seed == seeds[0] else None)
        walls, procs, started = {}, {}, {}
        for method in methods:
            started[method] = time.perf_counter()
            procs[method] = subprocess.Popen([str(edgekit), *commands[method][1:]])
            if not args.parallel:
                walls[method] = _wait(procs[method], started[method])
        for method in methods:
            if method not in walls:
                walls[method] = _wait(procs[method], started[method])
        for method in methods:
            rows.append(_row(method, seed, " ".join(commands[method][:-1]) + " <folder>", folders[method], walls[method]))
            print(json.dumps(rows[-1]), flush=True)
    report = json.loads((folders[methods[0]] / "report.json").read_text())
    teacher = report["teacher"]
    if args.teacher:
        teacher_stage = f"the file {args.teacher}, given to every run with --teacher"
    elif args.teacher_from:
        teacher_stage = (f"copied from {args.teacher_from} (an earlier run with the same defaults; its fingerprint "
                         "was checked by compress)")
    else:
        teacher_stage = "trained by each seed's first run"
    result = {"script": "python benchmarks/dkd_vs_kd.py " + " ".join(sys.argv[1:]), "teacher_stage": teacher_stage,
              "parallel": args.parallel, "note": args.note, "seeds": seeds,
              "commit": commit(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": {**report["host"], "python": platform.python_version()},
              "teacher": {k: teacher.get(k) for k in ("arch", "params", "accuracy")}, "rows": rows,
              "mean_int8_tflite": {m: round(statistics.mean(r["tflite_int8"] for r in rows if r["method"] == m), 6)
                                   for m in methods}}
    if "kd" in methods and "dkd" in methods:
        by = {(r["method"], r["seed"]): r["tflite_int8"] for r in rows}
        result["dkd_minus_kd_int8_tflite_points_by_seed"] = {
            str(s): round(100 * (by["dkd", s] - by["kd", s]), 2) for s in seeds}
        result["dkd_minus_kd_int8_tflite_points"] = round(
            100 * (result["mean_int8_tflite"]["dkd"] - result["mean_int8_tflite"]["kd"]), 2)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "dkd_vs_kd.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "dkd_vs_kd.md").write_text(markdown(result))
    print(markdown(result))
    if args.out is None:
        shutil.rmtree(base, ignore_errors=True)
    return 0


def _share_teacher(edgekit: Path, folders: dict[str, Path], methods: list[str], seed: int,
                   copy_from: Path | None) -> None:
    """The seed's first folder holds the teacher stage (copied or trained here); the others link it."""
    first = folders[methods[0]]
    if copy_from and not (first / "teacher").exists():
        first.mkdir(parents=True, exist_ok=True)
        shutil.copytree(copy_from / "teacher", first / "teacher", symlinks=True)
    for method in methods[1:]:
        out = folders[method]
        if not (out / "teacher").exists():
            out.mkdir(parents=True, exist_ok=True)
            os.symlink(os.path.relpath(first / "teacher", out), out / "teacher")
    if not (first / "teacher" / "stage.json").is_file():  # the teacher first, alone
        subprocess.run([str(edgekit), "teacher", "--seed", str(seed), "--out", str(first)], check=True)


def _row(method: str, seed: int, command: str, out: Path, wall: float) -> dict:
    report = json.loads((out / "report.json").read_text())
    arts = {a["name"]: a for a in report["artifacts"]}
    distill = json.loads((out / "distill" / "stage.json").read_text())["result"]
    return {"method": method, "seed": seed, "command": command, "wall_seconds": wall,
            "temperature": distill["temperature"], "alpha": distill["alpha"],
            "student_pytorch_fp32": report["students"][0]["accuracy"],
            "tflite_fp32": arts["model_fp32.tflite"]["accuracy"], "tflite_int8": arts["model_int8.tflite"]["accuracy"],
            "onnx_int8": arts["model_int8.onnx"]["accuracy"],
            "distill_loss_last_epoch": distill["history"][-1],
            "stage_seconds": {k: v["seconds"] for k, v in report["stages"].items()}}


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
             "| Method | Seed | Command | T | alpha | PyTorch FP32 % | TFLite FP32 % | TFLite INT8 % | ONNX INT8 % | wall s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for x in r["rows"]:
        lines.append(f"| {x['method']} | {x.get('seed', 0)} | `{x['command']}` | {x['temperature']} | {x['alpha']} | "
                     f"{100 * x['student_pytorch_fp32']:.2f} | {100 * x['tflite_fp32']:.2f} | {100 * x['tflite_int8']:.2f} | "
                     f"{100 * x['onnx_int8']:.2f} | {x['wall_seconds']} |")
    if r.get("note"):
        lines += ["", f"Note: {r['note']}"]
    if "mean_int8_tflite" in r and len(r.get("seeds", [0])) > 1:
        lines += ["", "Mean INT8 TFLite test accuracy over the seeds: "
                  + ", ".join(f"{m} {100 * v:.2f} %" for m, v in r["mean_int8_tflite"].items()) + "."]
    if "dkd_minus_kd_int8_tflite_points" in r:
        per_seed = r.get("dkd_minus_kd_int8_tflite_points_by_seed", {})
        lines += ["", f"DKD minus KD, INT8 TFLite test accuracy: {r['dkd_minus_kd_int8_tflite_points']:+.2f} points"
                  + (" (mean; per seed " + ", ".join(f"{s}: {v:+.2f}" for s, v in per_seed.items()) + ")."
                     if len(per_seed) > 1 else ".")]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
