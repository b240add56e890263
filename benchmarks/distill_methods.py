"""The distillation family on CIFAR-10, each method carried through QAT to INT8 TFLite.

    python benchmarks/distill_methods.py [--train-per-class 500] [--test-per-class 1000] [--epochs 12]
                                         [--teacher-epochs 10] [--qat-epochs 1] [--trial] [--resume]

Rows: scratch (alpha 0), kd, dkd, fitnet, at, kd+at, rkd, ensemble (2 ResNet-18 teachers, seeds 0 and 1),
progressive (one assistant), self (born-again, 2 generations; generation 1 trained as scratch is, so it
is scratch's student); each with the student's test accuracy in PyTorch (FP32) and as FP32 and INT8
TFLite files run in LiteRT, and its distillation seconds per epoch relative to scratch's.

Soft labels: after the teacher, one pass of it fills the shared cache with every part kd, dkd, fitnet,
at and rkd read (distill/prefill.py; its seconds are in the totals), so those runs and their QAT stages
read the cache (warm): their epoch against scratch's is the cache's cost. ensemble and progressive learn
from other models (two teachers; an assistant) and compute their side once (cold); the table says which.
``--trial`` adds kd at alpha 0.5 (a T/alpha trial on the warm cache).

tuned: ``edgekit tune``'s search (edgekit/tune.py: Optuna TPE, short runs scored on the validation split,
which is carved from the training images) over method, T and alpha, then a full run of its best settings:
the method a user would pick for this data without looking at the test set.

Data: ../shared/data/cifar10-jpg.tar.gz (JPEG ImageFolder), the first N images per class by file name
(benchmarks/cifar10_chain.py); skipped with a message when absent.
Writes benchmarks/results/distill_methods_t<T>_s<S>.{json,md}, named by the budget (``--name`` another stem).
Methods may be combined (``--methods scratch,kd,kd+at``); without scratch (``--methods kd,dkd``) the epoch
column has no reference and stays empty.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from statistics import median
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cifar10_chain import CACHE, RESULTS, add_subset_args, subset_or_skip  # noqa: E402

METHODS = ("scratch", "kd", "dkd", "fitnet", "at", "kd+at", "rkd", "ensemble", "progressive", "self", "tuned")
TUNE_METHODS = "kd,dkd,fitnet,at,rkd,kd+at"
PREFILL = "kd+fitnet+at+rkd"  # every part the single-teacher methods read


def linked_teacher(run: Path, teacher_run: Path) -> None:
    """A run folder whose teacher stage is another run's (one teacher trained for many students)."""
    run.mkdir(parents=True, exist_ok=True)
    link = run / "teacher"
    if not link.exists():
        os.symlink(os.path.relpath(teacher_run / "teacher", run), link)


def tflite_accuracies(run: Path, settings: Any) -> dict[str, Any]:
    """FP32 and INT8 TFLite files of the run's student, and their test accuracy in LiteRT."""
    from edgekit.runtime.runners import open_runner, tflite_io
    from edgekit.export.tflite_format import export_tflite
    from edgekit.models.stage_models import load_student
    from edgekit.quantize.saved_graph import load_prepared
    from edgekit.quantize import pt2e
    from edgekit.quantize.converted_cache import converted_graph
    from edgekit.stages.context import StageContext

    ctx = StageContext(settings, run)
    x, y = ctx.eval_split()
    int8 = converted_graph(run / "quantize", lambda: pt2e.convert(load_prepared(run / "distill", run / "quantize", settings.size)))
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, model, is_int8 in (("fp32", load_student(run / "distill"), False), ("int8", int8, True)):
            path = Path(tmp) / f"model_{name}.tflite"
            started = time.perf_counter()
            export_tflite(model, x[:1], path, int8=is_int8)
            predicted = open_runner(path, tflite_io(path), threads=2)(x.numpy()).argmax(1)
            out[f"tflite_{name}"] = {"accuracy": float((predicted == y.numpy()).mean()), "bytes": path.stat().st_size,
                                     "export_seconds": round(time.perf_counter() - started, 1)}
    return out


def stages_total(out: Path) -> float:
    """Seconds every stage under ``out`` recorded for its own run, and the cache prefill's (a resumed
    run's total is still whole)."""
    return sum(json.loads(p.read_text()).get("seconds", 0.0) for p in out.glob("*/*/stage.json")
               if not p.parent.is_symlink()) + sum(  # a linked teacher stage is counted once, in its own run
        json.loads((out / f).read_text())["seconds"] for f in ("prefill.json", "tune_search.json") if (out / f).is_file())


def prefill(out: Path, settings: Any) -> dict[str, Any]:
    """One pass of teacher_a over every epoch's views, writing all that PREFILL's terms read (kept in
    ``out/prefill.json``, so a resumed run does not pass again)."""
    from edgekit.distill.prefill import prefill_for_run
    from edgekit.stages.context import StageContext

    record = out / "prefill.json"
    if record.is_file():
        return json.loads(record.read_text())
    result = prefill_for_run(StageContext(settings, out / "teacher_a"), PREFILL.split("+"), settings.distill_epochs,
                             settings.soft_label_cache)
    record.write_text(json.dumps(result) + "\n")
    return result


def stage_result(run: Path, stage: str) -> dict[str, Any]:
    return json.loads((run / stage / "stage.json").read_text())


def tune_search(out: Path, settings: Any, methods: list[str], trials: int, epochs: int) -> dict[str, Any]:
    """``edgekit tune``'s search from teacher_a, in ``out/tune`` (kept in ``out/tune_search.json``)."""
    from edgekit.tune import search, write_reports
    from edgekit.stages.context import StageContext

    record = out / "tune_search.json"
    if record.is_file():
        return json.loads(record.read_text())
    started = time.perf_counter()
    linked_teacher(out / "tune", out / "teacher_a")
    ctx = StageContext(settings, out / "tune")
    rows = search(ctx, trials, methods, epochs)
    best = write_reports(out / "tune", settings, rows, epochs)
    result = {"methods": methods, "trial_epochs": epochs, "trials": rows, "best": best,
              "seconds": round(time.perf_counter() - started, 1)}
    record.write_text(json.dumps(result, indent=2) + "\n")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_subset_args(parser, 500)
    parser.add_argument("--epochs", type=int, default=12, help="distillation epochs of every student")
    parser.add_argument("--teacher-epochs", type=int, default=10)
    parser.add_argument("--qat-epochs", type=int, default=1)  # a PT2E QAT epoch costs ~5 plain ones here
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--out", type=Path, default=CACHE / "methods")
    parser.add_argument("--name", default=None,
                        help="file stem of the results (default distill_methods_t<teacher epochs>_s<student epochs>, "
                             "so a run at one budget never overwrites another budget's table)")
    parser.add_argument("--trial", action="store_true", help="add kd at alpha 0.5, a T/alpha trial")
    parser.add_argument("--tune-trials", type=int, default=12, help="trials of the search behind the tuned row")
    parser.add_argument("--tune-epochs", type=int, default=4, help="distillation epochs of each trial")
    parser.add_argument("--tune-methods", default=TUNE_METHODS)
    parser.add_argument("--resume", action="store_true",
                        help="keep the stages an earlier, cut-off run finished (fingerprints decide) instead of starting over")
    args = parser.parse_args()
    args.name = args.name or f"distill_methods_t{args.teacher_epochs}_s{args.epochs}"
    started = time.perf_counter()
    data = subset_or_skip(args)
    if data is None:
        return 0

    from edgekit.config import Settings, as_dict
    from edgekit.chain import run_chain
    from edgekit.stages.context import StageContext

    out = args.out
    if not args.resume:
        shutil.rmtree(out, ignore_errors=True)  # every number below comes from this run
    common = dict(data=str(data), hflip=True, teacher_epochs=args.teacher_epochs, distill_epochs=args.epochs,
                  qat_epochs=args.qat_epochs, soft_label_cache=str((out / "soft_labels").resolve()))
    seconds: dict[str, float] = {}

    def chain(name: str, settings: Settings, stages: list[str]) -> None:
        t = time.perf_counter()
        run_chain(StageContext(settings, out / name), stages)
        seconds[name] = round(seconds.get(name, 0.0) + time.perf_counter() - t, 1)
        print(f"[{(time.perf_counter() - started) / 60:.1f} min] {name}: {stages} done "
              f"(stage seconds so far: {stages_total(out):.0f})", flush=True)

    chain("teacher_a", Settings(**common), ["teacher"])
    filled = prefill(out, Settings(**common))
    print(f"[{(time.perf_counter() - started) / 60:.1f} min] prefill: {json.dumps(filled)}", flush=True)
    methods = [m for m in args.methods.split(",") if m]
    runs: dict[str, Settings] = {}
    tuned: dict[str, Any] | None = None
    for method in methods:
        if method == "scratch":
            runs[method] = Settings(**common, alpha=0.0)
        elif method == "ensemble":
            chain("teacher_b", Settings(**common, seed=1), ["teacher"])
            runs[method] = Settings(**common, method="ensemble",
                                    teacher=str(out / "teacher_a" / "teacher" / "model.safetensors"),
                                    extra_teachers=[str(out / "teacher_b" / "teacher" / "model.safetensors")])
        elif method == "tuned":
            tuned = tune_search(out, Settings(**common), args.tune_methods.split(","), args.tune_trials, args.tune_epochs)
            print(f"[{(time.perf_counter() - started) / 60:.1f} min] tune: best {json.dumps(tuned['best'])}", flush=True)
            best = tuned["best"]
            runs[method] = Settings(**common, method=best["method"], temperature=best["temperature"], alpha=best["alpha"])
        elif method == "self":  # generation 1 from the labels as long as scratch's student trains: the same model
            runs[method] = Settings(**{**common, "teacher_epochs": args.epochs}, method="self")
        else:
            runs[method] = Settings(**common, method=method)
        if method in ("ensemble", "self"):
            chain(method, runs[method], ["teacher", "distill", "quantize"])
        else:
            linked_teacher(out / method, out / "teacher_a")
            chain(method, runs[method], ["distill", "quantize"])
        if method == "kd" and args.trial:  # a T/alpha trial on the warm cache
            linked_teacher(out / "kd_trial", out / "teacher_a")
            runs["kd_trial"] = Settings(**common, alpha=0.5)
            chain("kd_trial", runs["kd_trial"], ["distill"])

    rows = []
    for name in [*methods, "kd_trial"] if "kd_trial" in runs else methods:
        run = out / name
        distill = stage_result(run, "distill")
        row = {"name": name, "method": runs[name].method if name != "scratch" else "none (alpha 0)",
               "alpha": runs[name].alpha, "temperature": runs[name].temperature, "pytorch_fp32": distill["result"]["accuracy"],
               "distill_seconds": distill["seconds"], "epoch_seconds": distill["result"]["epoch_seconds"],
               "soft_label_epochs": distill["result"]["soft_label_epochs"],
               "intermediate": [{k: v for k, v in s.items() if k not in ("history",)}
                                for s in distill["result"].get("intermediate", [])]}
        if (run / "quantize" / "stage.json").is_file():
            quant = stage_result(run, "quantize")
            row.update({"pytorch_int8": quant["result"]["accuracy"], "qat_seconds": quant["seconds"],
                        **tflite_accuracies(run, runs[name])})
        if name in ("ensemble", "self"):
            row["teacher"] = {k: stage_result(run, "teacher")["result"].get(k) for k in ("accuracy", "source", "params")}
        rows.append(row)
        print(f"{name}: {json.dumps({k: v for k, v in row.items() if k != 'epoch_seconds'})}", flush=True)

    scratch = next((r for r in rows if r["name"] == "scratch"), None)
    for r in rows:  # without a scratch row (``--methods kd,dkd``) there is no time reference
        r["epoch_vs_scratch"] = (round(median(r["epoch_seconds"]) / median(scratch["epoch_seconds"]), 3)
                                 if scratch else None)
    teacher_a = stage_result(out / "teacher_a", "teacher")["result"]
    result = {
        "command": "python benchmarks/distill_methods.py " + " ".join(sys.argv[1:]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "python": platform.python_version()},
        "budget": {"train_images": 10 * args.train_per_class, "test_images": 10 * args.test_per_class,
                   "teacher_epochs": args.teacher_epochs, "epochs": args.epochs, "qat_epochs": args.qat_epochs,
                   "input": "32x32", "total_minutes": round((time.perf_counter() - started) / 60, 1),
                   "stage_minutes": round(stages_total(out) / 60, 1), "resumed": args.resume},
        "teacher": {k: teacher_a[k] for k in ("accuracy", "arch", "params")},
        "prefill": filled, "tune": tuned, "rows": rows, "run_seconds": seconds, "settings": as_dict(runs["scratch" if "scratch" in runs else methods[0]]),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{args.name}.md").write_text(markdown(result))
    print(markdown(result))
    return 0


def markdown(r: dict[str, Any]) -> str:
    b = r["budget"]
    lines = ["# Distillation methods on CIFAR-10, through INT8", "",
             f"Command: `{r['command']}`  ", f"Date: {r['date']}  ",
             f"Machine: {r['machine']['cpu']}, {r['machine']['cores']} cores, Python {r['machine']['python']}  ",
             f"Budget: {b['train_images']} train images (first N per class; a tenth of them is the validation split, "
             f"the rest is trained on) / {b['test_images']} test images, 32x32, "
             f"teacher {b['teacher_epochs']} epochs, students {b['epochs']} epochs, QAT {b['qat_epochs']} epochs; "
             f"whole run {b['total_minutes']} min"
             + (f" in this invocation, stages {b.get('stage_minutes')} min in all (resumed)" if b.get("resumed") else "")
             + ".  ",
             f"Teacher: {r['teacher']['arch']}, {r['teacher']['params']:,} parameters, test accuracy "
             f"{100 * r['teacher']['accuracy']:.2f} %. Student: MobileNetV2 x0.35 (408,938 parameters).", "",
             "| Method | T | alpha | PyTorch FP32 % | TFLite FP32 % | TFLite INT8 % | s/epoch | epoch vs scratch | soft labels read / computed |",
             "|---|---|---|---|---|---|---|---|---|"]

    def vs_scratch(row: dict[str, Any]) -> str:
        return f"{row['epoch_vs_scratch']:.2f}" if row.get("epoch_vs_scratch") is not None else ""

    def pct(row: dict[str, Any], key: str) -> str:
        value = row.get(key)
        value = value["accuracy"] if isinstance(value, dict) else value
        return f"{100 * value:.2f}" if value is not None else ""

    for row in r["rows"]:
        lines.append(f"| {row['name']} ({row['method']}) | {row.get('temperature', '')} | {row['alpha']} | {pct(row, 'pytorch_fp32')} | "
                     f"{pct(row, 'tflite_fp32')} | {pct(row, 'tflite_int8')} | {median(row['epoch_seconds']):.1f} | "
                     f"{vs_scratch(row)} | {row['soft_label_epochs']['read']} / "
                     f"{row['soft_label_epochs']['computed']} |")
    if r.get("prefill"):
        f = r["prefill"]
        lines += ["", f"Soft labels: one teacher pass over {f['epochs_written']} epochs' views wrote every part of "
                  f"{f['method']} in {f['seconds']} s, before the runs (counted in the totals)."]
    if r.get("tune"):
        t = r["tune"]
        lines += ["", f"tuned: {len(t['trials'])} trials of {t['trial_epochs']} epochs over {', '.join(t['methods'])} "
                  f"(Optuna TPE, seeded; validation split from the training images), {t['seconds']} s; best: "
                  f"{t['best']['method']}, T {t['best']['temperature']}, alpha {t['best']['alpha']}.", "",
                  "| Trial | Method | T | alpha | Val % |", "|---|---|---|---|---|"]
        lines += [f"| {x['trial'] + 1} | {x['method']} | {x['temperature']} | {x['alpha']} | "
                  + (f"{100 * x['val_accuracy']:.2f} |" if x.get("val_accuracy") is not None else f"failed: {x['reason']} |")
                  for x in t["trials"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
