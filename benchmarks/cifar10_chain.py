"""CIFAR-10 through the whole chain, side by side from one run.

Teacher, a student trained from scratch with the same budget (alpha = 0), the distilled student,
teacher-guided QAT INT8 and PTQ INT8 (PyTorch, onnxruntime, LiteRT), file sizes and host latency.

Data: ../shared/data/cifar10-jpg.tar.gz (JPEG ImageFolder); skipped with a message when absent.
A fixed subset (the first N images per class by file name) keeps the run inside its budget on
2 cores; the subset size and epochs are recorded with the results.

    python benchmarks/cifar10_chain.py [--train-per-class 1000] [--test-per-class 1000] [--epochs 10] [--qat-epochs 3]

The defaults are the documented budget: 15.4 min on 2 quiet cores (results/cifar10_1000.md). A larger one,
2,500 per class and 12 epochs, is in results/cifar10.md.

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


def add_subset_args(parser: argparse.ArgumentParser, train_per_class: int, test_per_class: int = 1000) -> None:
    parser.add_argument("--train-per-class", type=int, default=train_per_class)
    parser.add_argument("--test-per-class", type=int, default=test_per_class)


def subset_or_skip(args: argparse.Namespace) -> Path | None:
    """The CIFAR-10 subset the arguments name, or None (said on stdout) when the shared archive is absent."""
    if not ARCHIVE.is_file():
        print(f"skipped: {ARCHIVE} is absent (see shared/data/README.md)")
        return None
    return make_subset(unpack(), args.train_per_class, args.test_per_class)


def stage_seconds(out: Path) -> dict[str, dict[str, float]]:
    """Seconds each stage took when it ran, per run (copied stages count once, in kd_qat)."""
    own = {"kd_qat": ("teacher", "distill", "quantize", "artifacts", "benchmark"),
           "kd_ptq": ("quantize", "artifacts", "benchmark"), "scratch": ("distill",)}
    return {run: {stage: round(json.loads((out / run / stage / "stage.json").read_text())["seconds"], 1)
                  for stage in stages} for run, stages in own.items()}


def int8_margins(ctx, run_dir: Path) -> dict:
    """Why INT8 files and the PyTorch INT8 graph disagree: the reference's top-2 margin, in output
    quantization steps of the INT8 TFLite file, over all images and over the disagreeing ones."""
    import numpy as np

    from edgekit.runtime.runners import open_runner
    from edgekit.models.predictions import load_logits

    x, _ = ctx.eval_split()
    reference = load_logits(run_dir / "quantize").numpy()
    document = json.loads((run_dir / "artifacts" / "preprocess.json").read_text())
    step = document["artifacts"]["model_int8.tflite"]["output_scale"]
    top2 = np.sort(reference, axis=1)[:, -2:]
    margin = (top2[:, 1] - top2[:, 0]) / step
    result = {"output_step": step, "median_margin_steps": float(np.median(margin))}
    for name in ("model_int8.onnx", "model_int8.tflite"):
        predicted = open_runner(run_dir / "artifacts" / name, document["artifacts"][name], 2)(x.numpy()).argmax(1)
        differ = predicted != reference.argmax(1)
        result[name] = {"disagreements": int(differ.sum()),
                        "median_margin_steps_where_differ": float(np.median(margin[differ])) if differ.any() else None,
                        "share_within_2_steps": float(np.mean(margin[differ] <= 2)) if differ.any() else None}
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_subset_args(parser, 1000)
    parser.add_argument("--epochs", type=int, default=10, help="teacher and student epochs")
    parser.add_argument("--qat-epochs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=CACHE / "runs")
    args = parser.parse_args()
    started = time.perf_counter()
    data = subset_or_skip(args)
    if data is None:
        return 0

    from edgekit.config import Settings, as_dict
    from edgekit.chain import run_chain
    from edgekit.stages.context import StageContext

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
        for stage in reuse:  # always a fresh copy: a folder left from another budget must not be reused
            dest = out / name / stage
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(out / "kd_qat" / stage, dest)
        run_chain(StageContext(runs[name], out / name), stages)
        seconds[name] = time.perf_counter() - t

    margins = {name: int8_margins(StageContext(runs[name], out / name), out / name) for name in ("kd_qat", "kd_ptq")}
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
                   "total_minutes": round(sum(sum(v.values()) for v in stage_seconds(out).values()) / 60, 1),
                   "this_invocation_minutes": round((time.perf_counter() - started) / 60, 1)},
        "run_seconds": {k: round(v, 1) for k, v in seconds.items()},
        # what the whole run costs, whatever this invocation could reuse: every stage's own recorded time
        "stage_seconds": stage_seconds(out),
        "teacher": qat["teacher"],
        "scratch_student": {"accuracy": scratch["accuracy"], "params": scratch["params"]},
        "distilled_student": qat["students"][0],
        "qat_int8": {"pytorch": qat["students"][1]["accuracy"], "artifacts": by_name(qat)},
        "ptq_int8": {"pytorch": ptq["students"][1]["accuracy"], "artifacts": by_name(ptq)},
        "int8_margins": {"qat": margins["kd_qat"], "ptq": margins["kd_ptq"]},
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
        f"32x32 input; whole run {r['budget']['total_minutes']} min (the sum of every stage's own time; "
        f"this invocation took {r['budget']['this_invocation_minutes']} min, reusing what was up to date).", "",
        "Stage seconds: " + "; ".join(f"{run}: " + ", ".join(f"{k} {v:g}" for k, v in st.items())
                                      for run, st in r["stage_seconds"].items()) + ".", "",
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
    lines += ["", "## Checks (issue 3)", ""] + [f"- {line}" for line in checks(r)]
    lines += ["", "## Why the INT8 files do not agree 100 % with the PyTorch INT8 graph", "",
              "The PyTorch INT8 graph computes each operator in float between quantize/dequantize pairs; the runtimes "
              "use integer kernels with fixed-point requantization, so each layer may round one step differently and "
              "the differences add up over MobileNetV2's 50-odd layers. They change the top-1 class only where the two "
              "best logits are nearly tied. Reference top-2 margin, in output steps of the INT8 TFLite file:", "",
              "| Model | File | Disagreements | Median margin, all images | Median margin where they differ | Differences within 2 steps |",
              "|---|---|---|---|---|---|"]
    for label, key in (("QAT INT8", "qat"), ("PTQ INT8", "ptq")):
        m = r["int8_margins"][key]
        for name in ("model_int8.onnx", "model_int8.tflite"):
            d = m[name]
            where = "—" if d["median_margin_steps_where_differ"] is None else f"{d['median_margin_steps_where_differ']:.1f}"
            within = "—" if d["share_within_2_steps"] is None else f"{100 * d['share_within_2_steps']:.0f} %"
            lines.append(f"| {label} | `{name}` | {d['disagreements']} | {m['median_margin_steps']:.1f} | {where} | {within} |")
    return "\n".join(lines) + "\n"


def checks(r: dict) -> list[str]:
    """The issue's CIFAR-10 targets, each with the numbers it compares."""
    qat, ptq = r["qat_int8"]["artifacts"], r["ptq_int8"]["artifacts"]
    distilled, scratch = r["distilled_student"]["accuracy"], r["scratch_student"]["accuracy"]
    qat_tfl, ptq_tfl = qat["model_int8.tflite"]["accuracy"], ptq["model_int8.tflite"]["accuracy"]
    ratio = qat["model_int8.tflite"]["bytes"] / (r["teacher"]["params"] * 4)
    mark = lambda ok: "pass" if ok else "MISS"  # noqa: E731
    return [
        f"{mark(distilled >= scratch + 0.01)}: distilled {100 * distilled:.2f} % >= scratch {100 * scratch:.2f} % + 1 point",
        f"{mark(qat_tfl >= distilled - 0.005)}: QAT INT8 TFLite {100 * qat_tfl:.2f} % within 0.5 point below "
        f"the FP32 student {100 * distilled:.2f} %",
        f"{mark(qat_tfl > ptq_tfl)}: QAT INT8 TFLite {100 * qat_tfl:.2f} % > PTQ INT8 TFLite {100 * ptq_tfl:.2f} %",
        f"{mark(ratio <= 1 / 40)}: INT8 TFLite file is {ratio:.4f} of the teacher's FP32 weights (<= 1/40 = 0.025)",
        f"{mark(r['budget']['total_minutes'] <= 60)}: whole run {r['budget']['total_minutes']} min <= 60 min",
    ]


if __name__ == "__main__":
    sys.exit(main())
