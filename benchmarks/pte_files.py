"""A run's ExecuTorch files beside its TFLite files: size, accuracy, agreement with PyTorch, host latency.

Accuracy and agreement are recomputed here on the run's whole test split, each file in its own runtime opened
from its path alone (``executorch.runtime`` for a ``.pte``, the LiteRT ``Interpreter`` for a ``.tflite``, fed as
preprocess.json says), and set beside report.json's numbers for the same files. Agreement is top-1 against the
PyTorch graph the file came from (the FP32 student, or the PT2E INT8 graph), from the logits the run's stages
saved. Host latency: one image, 1 thread, the four files timed interleaved with edgekit's latency loop.

    python benchmarks/pte_files.py --run DIR --name digits   # DIR: a finished `edgekit compress` folder

Writes benchmarks/results/pte_<name>.json and .md.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from app_clients import open_run, run_arguments, stamp, write_results  # noqa: E402

FILES = ("model_fp32.pte", "model_int8.pte", "model_fp32.tflite", "model_int8.tflite")
MAX_PTE_RATIO = 0.40  # issue 19: the INT8 .pte at most 0.40 of the FP32 .pte
THREADS = 1


def measure(run: Path, seconds: float) -> dict:
    from edgekit.bench.latency import measure_interleaved
    from edgekit.export.pte_format import delegates
    from edgekit.models.predictions import load_logits
    from edgekit.runtime.runners import open_runner

    report, doc, spec, data = open_run(run)
    images, labels = data.splits[data.eval_split]
    x = spec.normalize(images).numpy()
    reference = {"fp32": load_logits(run / "distill").numpy().argmax(1),
                 "int8": load_logits(run / "quantize").numpy().argmax(1)}
    own = {a["name"]: a for a in report["artifacts"]}
    rows, calls = [], {}
    for name in FILES:
        path, entry = run / "artifacts" / name, doc["artifacts"][name]
        runner = open_runner(path, entry, THREADS)
        top1 = runner(x).argmax(1)
        precision = "int8" if "int8" in name else "fp32"
        single = runner.prepared_single(x)
        calls[name] = lambda runner=runner, single=single: runner.run_prepared(single)
        rows.append({"name": name, "runtime": runner.runtime, "bytes": path.stat().st_size,
                     "input": entry["input_dtype"], "images": int(len(labels)),
                     "accuracy": round(float(np.mean(top1 == labels)), 5),
                     "agreement": round(float(np.mean(top1 == reference[precision])), 5),
                     "report_accuracy": own[name]["accuracy"], "report_agreement": own[name]["agreement"],
                     "report_p50_ms": own[name]["latency_ms"]["p50"],
                     "report_threads": own[name]["latency_ms"]["threads"],
                     **({"delegates": delegates(path)} if path.suffix == ".pte" else {})})
    load_before = os.getloadavg()
    latencies = measure_interleaved(calls, runs=200, threads=THREADS, seconds=seconds)
    load_after = os.getloadavg()
    for row in rows:
        lat = latencies[row["name"]]
        row.update(p50_ms=round(float(lat["p50"]), 4), p90_ms=round(float(lat["p90"]), 4))
    by_name = {r["name"]: r for r in rows}
    ratios = {fmt: round(by_name[f"model_int8.{fmt}"]["bytes"] / by_name[f"model_fp32.{fmt}"]["bytes"], 4)
              for fmt in ("pte", "tflite")}
    return {"run": str(run), "data": report["data"]["source"], "split": data.eval_split, "rows": rows,
            "int8_to_fp32_bytes": ratios, "pytorch_accuracy": {"fp32": report["students"][0]["accuracy"],
                                                               "int8": report["students"][1]["accuracy"]},
            "versions": {k: report["versions"].get(k) for k in ("torch", "torchao", "executorch", "ai-edge-litert")},
            "host": {"cpu": report["host"]["cpu"], "cores": os.cpu_count(),
                     "load_avg_1min_before": round(load_before[0], 2), "load_avg_1min_after": round(load_after[0], 2)}}


def render(result: dict) -> str:
    host = result["host"]
    shared = max(host["load_avg_1min_before"], host["load_avg_1min_after"]) > 1.5  # 1: this process
    lines = [f"# ExecuTorch (.pte) files beside TFLite: {result['name']}", "",
             f"Command: `python benchmarks/pte_files.py --run <run> --name {result['name']}` on a run made by "
             f"`{result['run_command']}`  ",
             f"Date: {result['date']}  ", f"Commit: {result['commit']}  ",
             f"Machine: {host['cpu']}, {host['cores']} cores, python {platform.python_version()}  ",
             f"Versions: {', '.join(f'{k} {v}' for k, v in result['versions'].items())}  ",
             f"Data: {result['data']}, {result['split']} split, {result['rows'][0]['images']} images", "",
             "Each file in its own runtime, from its path alone: `executorch.runtime` (XNNPACK delegate inside the "
             "file) for .pte, the LiteRT `Interpreter` for .tflite. Agreement: top-1 against the PyTorch graph the "
             "file came from (FP32 student; PT2E INT8 graph, the same one every INT8 file is made from). "
             "*report* is report.json's number for the same file. Latency: one image, "
             f"{THREADS} thread, the four files timed interleaved.", "",
             "| File | Runtime | Input | Bytes | Accuracy | report | Agreement | report | p50 ms | p90 ms |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['name']} | {r['runtime']} | {r['input']} | {r['bytes']:,} | {100 * r['accuracy']:.2f} % | "
                     f"{100 * r['report_accuracy']:.2f} % | {r['agreement']:.4f} | {r['report_agreement']:.4f} | "
                     f"{r['p50_ms']:.3f} | {r['p90_ms']:.3f} |")
    ratios = result["int8_to_fp32_bytes"]
    pte = ratios["pte"]
    lines += ["", f"INT8/FP32 bytes: .pte {pte:.3f}, .tflite {ratios['tflite']:.3f}. "
              f"PyTorch accuracy: FP32 {100 * result['pytorch_accuracy']['fp32']:.2f} %, "
              f"INT8 {100 * result['pytorch_accuracy']['int8']:.2f} %.", "",
              f"- {'pass' if pte <= MAX_PTE_RATIO else 'MISS'}: INT8 .pte at most {MAX_PTE_RATIO} of the FP32 .pte "
              f"({pte:.3f})",
              f"- 1-minute load average {host['load_avg_1min_before']} before and {host['load_avg_1min_after']} after "
              f"the timing on {host['cores']} cores (the timing itself keeps about 1 busy)" + (": another job shared the cores, so the latencies are "
                                                        "noisier and higher than on an idle host" if shared else "")]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = run_arguments(__doc__)
    parser.add_argument("--seconds", type=float, default=5.0, help="least time the interleaved timing runs")
    args = parser.parse_args()
    result = measure(args.run, args.seconds)
    stamp(result, args)
    write_results(f"pte_{args.name}", result, render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
