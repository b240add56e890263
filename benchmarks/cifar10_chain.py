"""CIFAR-10 through the whole chain, side by side from one run.

Teacher, a student trained from scratch with the same budget (alpha = 0), the distilled student,
teacher-guided QAT INT8 and PTQ INT8 (PyTorch, onnxruntime, LiteRT), file sizes and host latency.

Data: ../shared/data/cifar10-jpg.tar.gz (JPEG ImageFolder); skipped with a message when absent.
A fixed subset (the first N images per class by file name) keeps the run inside its budget on
2 cores; the subset size and epochs are recorded with the results.

    python benchmarks/cifar10_chain.py [--train-per-class 1000] [--test-per-class 200] [--epochs 15]

Writes benchmarks/results/cifar10.json and cifar10.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tarfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = ROOT.parent / "shared" / "data" / "cifar10-jpg.tar.gz"
CACHE = ROOT / "benchmarks" / ".cache"
RESULTS = ROOT / "benchmarks" / "results"


def unpack() -> Path:
    target = CACHE / "cifar10-jpg"
    if not (target / "test").is_dir():
        CACHE.mkdir(parents=True, exist_ok=True)
        with tarfile.open(ARCHIVE) as tar:
            tar.extractall(CACHE / "cifar10-jpg.partial", filter="data")
        os.replace(CACHE / "cifar10-jpg.partial", target)
    return target


def make_subset(full: Path, train_per_class: int, test_per_class: int) -> Path:
    """An ImageFolder of symlinks: the first N files per class, sorted by name (deterministic)."""
    subset = CACHE / f"cifar10-{train_per_class}-{test_per_class}"
    if subset.is_dir():
        return subset
    tmp = subset.with_suffix(".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    for split, n in (("train", train_per_class), ("test", test_per_class)):
        for class_dir in sorted((full / split).iterdir()):
            dest = tmp / split / class_dir.name
            dest.mkdir(parents=True)
            for file in sorted(class_dir.iterdir())[:n]:
                (dest / file.name).symlink_to(file.resolve())
    os.replace(tmp, subset)
    return subset


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-per-class", type=int, default=1000)
    parser.add_argument("--test-per-class", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=15, help="teacher and student epochs")
    parser.add_argument("--qat-epochs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=CACHE / "runs")
    args = parser.parse_args()
    if not ARCHIVE.is_file():
        print(f"skipped: {ARCHIVE} is absent (see shared/data/README.md)")
        return 0

    from edgekit.config import Settings, as_dict
    from edgekit.pipeline.chain import run_chain
    from edgekit.stages.common import StageContext

    started = time.perf_counter()
    data = make_subset(unpack(), args.train_per_class, args.test_per_class)
    common = dict(data=str(data), hflip=True, teacher_epochs=args.epochs, distill_epochs=args.epochs,
                  qat_epochs=args.qat_epochs)
    runs = {
        "kd_qat": Settings(**common),
        "kd_ptq": Settings(**common, quant_method="ptq"),
        "scratch": Settings(**common, alpha=0.0),
    }
    out = args.out
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    run_chain(StageContext(runs["kd_qat"], out / "kd_qat"), ["teacher", "distill", "quantize", "export", "benchmark"])
    seconds["kd_qat"] = time.perf_counter() - t
    # The PTQ and scratch runs reuse the finished teacher (and, for PTQ, the distilled student).
    for name, stages, reuse in (("kd_ptq", ["quantize", "export", "benchmark"], ["teacher", "distill"]),
                                ("scratch", ["distill"], ["teacher"])):
        t = time.perf_counter()
        for stage in reuse:
            dest = out / name / stage
            if not dest.exists():
                shutil.copytree(out / "kd_qat" / stage, dest)
        run_chain(StageContext(runs[name], out / name), stages)
        seconds[name] = time.perf_counter() - t

    qat = json.loads((out / "kd_qat" / "report.json").read_text())
    ptq = json.loads((out / "kd_ptq" / "report.json").read_text())
    scratch = json.loads((out / "scratch" / "distill" / "stage.json").read_text())["result"]
    by_name = lambda report: {a["name"]: a for a in report["artifacts"]}  # noqa: E731
    result = {
        "command": "python benchmarks/cifar10_chain.py " + " ".join(sys.argv[1:]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {**qat["host"], "python": platform.python_version()},
        "budget": {"train_images": args.train_per_class * 10, "test_images": args.test_per_class * 10,
                   "epochs": args.epochs, "qat_epochs": args.qat_epochs, "input": "32x32",
                   "total_minutes": round((time.perf_counter() - started) / 60, 1)},
        "run_seconds": {k: round(v, 1) for k, v in seconds.items()},
        "teacher": qat["teacher"],
        "scratch_student": {"accuracy": scratch["accuracy"], "params": scratch["params"]},
        "distilled_student": qat["students"][0],
        "qat_int8": {"pytorch": qat["students"][1]["accuracy"], "artifacts": by_name(qat)},
        "ptq_int8": {"pytorch": ptq["students"][1]["accuracy"], "artifacts": by_name(ptq)},
        "settings": as_dict(runs["kd_qat"]),
        "versions": qat["versions"],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "cifar10.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "cifar10.md").write_text(render(result))
    print(render(result))
    return 0


def render(r: dict) -> str:
    pct = lambda v: f"{100 * v:.2f}"  # noqa: E731
    teacher_fp32_bytes = r["teacher"]["params"] * 4
    lines = [
        "# CIFAR-10 through the chain", "",
        f"Command: `{r['command']}`  ", f"Date: {r['date']}  ",
        f"Machine: {r['machine']['cpu']}, {r['machine']['cores']} cores, Python {r['machine']['python']}  ",
        f"Budget: {r['budget']['train_images']} train / {r['budget']['test_images']} test images (first N per class), "
        f"{r['budget']['epochs']} epochs teacher and students, {r['budget']['qat_epochs']} QAT epochs, "
        f"32x32 input; whole run {r['budget']['total_minutes']} min.", "",
        "| Model | Runtime | Test accuracy % | Agreement % | Size KiB | Host ms p50 |", "|---|---|---|---|---|---|",
        f"| teacher {r['teacher']['arch']} ({r['teacher']['params']:,} params) | PyTorch | {pct(r['teacher']['accuracy'])} | | "
        f"{teacher_fp32_bytes / 1024:.0f} (fp32 weights) | |",
        f"| student from scratch (alpha 0) | PyTorch | {pct(r['scratch_student']['accuracy'])} | | | |",
        f"| distilled student ({r['distilled_student']['params']:,} params) | PyTorch | {pct(r['distilled_student']['accuracy'])} | | | |",
    ]
    for label, key in (("QAT INT8", "qat_int8"), ("PTQ INT8", "ptq_int8")):
        lines.append(f"| {label} | PyTorch | {pct(r[key]['pytorch'])} | | | |")
        for name, a in r[key]["artifacts"].items():
            if key == "ptq_int8" and "fp32" in name:
                continue
            if a["status"] != "ok":
                lines.append(f"| {label if 'int8' in name else 'FP32 student'} {name} | — | failed | | | |")
                continue
            lines.append(f"| {label if 'int8' in name else 'FP32 student'} `{name}` | {a['runtime']} | {pct(a['accuracy'])} | "
                         f"{pct(a['agreement'])} | {a['bytes'] / 1024:.0f} | {a['latency_ms']['p50']:.3f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
