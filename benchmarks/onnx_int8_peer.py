"""edgekit's INT8 ONNX against onnxruntime's own ``quantize_static`` of the same FP32 file, as apps run them.

Every file runs in a plain ``onnxruntime.InferenceSession`` (default options, CPU provider, 1 intra-op thread,
batch 1). For a finished run it measures ``model_int8.onnx`` and the peer that onnxruntime's quantizer makes
from the run's ``model_fp32.onnx`` (QDQ, per channel, uint8 activations, int8 weights, ``reduce_range=True``,
calibrated on a seeded random sample of the run's training images): accuracy on the run's test split,
agreement with the PyTorch INT8 graph, the graph onnxruntime really runs (its optimized model: QLinearConv,
float Conv, Clip, QuantizeLinear/DequantizeLinear counts) and latency, timed in interleaved rounds so that
load on the machine falls on every file alike. The INT8/FP32 ratio is given beside the LiteRT one (XNNPACK).
``--mobilenet224`` adds MobileNetV2 1.0 at 224 px with untrained weights (timing only): edgekit's PT2E path
(PTQ on random images) and ``quantize_static`` of the same FP32 export.

    python benchmarks/onnx_int8_peer.py --run DIR --name digits [--mobilenet224]

Writes benchmarks/results/onnx_int8_peer_<name>.json and .md.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from app_clients import run_arguments, stamp, write_results  # noqa: E402 - a sibling script

CALIBRATION_IMAGES = 1024
ROUNDS, RUNS_PER_ROUND = 21, 200
CI_RESAMPLES = 2000


def ratio_interval(ours: list[float], theirs: list[float]) -> dict[str, float]:
    """Median of the per-round ratios ours/theirs (same round, so both saw the same load) and its 95 % interval
    (bootstrap over rounds, seeded): "no slower" is a claim about this ratio, not about one pair of medians."""
    ratios = np.asarray(ours) / np.asarray(theirs)
    rng = np.random.default_rng(0)
    boot = np.median(rng.choice(ratios, size=(CI_RESAMPLES, len(ratios))), axis=1)
    low, high = np.percentile(boot, [2.5, 97.5])
    return {"median": round(float(np.median(ratios)), 4), "low": round(float(low), 4), "high": round(float(high), 4),
            "rounds": len(ratios)}


def session(path: Path):  # noqa: ANN201
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def graph_ops(path: Path) -> dict[str, int]:
    """The operators of the graph a plain session runs (its optimized model)."""
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        ops = Counter(n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node)
    keep = ("QLinearConv", "Conv", "Clip", "QLinearAdd", "Add", "QuantizeLinear", "DequantizeLinear", "Transpose")
    return {k: int(ops.get(k, 0)) for k in keep}


def peer_quantize(fp32: Path, out: Path, calibration: np.ndarray) -> None:
    """onnxruntime's own static quantization of ``fp32``, with the settings its documentation gives for x86."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            name = session(fp32).get_inputs()[0].name
            self.batches = iter([{name: calibration[i:i + 1]} for i in range(len(calibration))])

        def get_next(self):  # noqa: ANN202
            return next(self.batches, None)

    pre = out.with_suffix(".pre.onnx")
    quant_pre_process(str(fp32), str(pre))
    quantize_static(str(pre), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, reduce_range=True)
    pre.unlink()


def top1(path: Path, x: np.ndarray) -> np.ndarray:
    s = session(path)
    name = s.get_inputs()[0].name
    return np.concatenate([s.run(None, {name: x[i:i + 1]})[0].argmax(1) for i in range(len(x))])


def interleaved_p50(runners: dict[str, object]) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Median ms of one call per file, over rounds that visit every file in turn; and each round's median."""
    times: dict[str, list[float]] = {k: [] for k in runners}
    rounds: dict[str, list[float]] = {k: [] for k in runners}
    for run in runners.values():
        for _ in range(30):
            run()
    for _ in range(ROUNDS):
        for name, run in runners.items():
            for _ in range(RUNS_PER_ROUND):
                t0 = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - t0)
            rounds[name].append(1000 * float(np.median(times[name][-RUNS_PER_ROUND:])))
    return {k: round(1000 * float(np.median(v)), 4) for k, v in times.items()}, rounds


def onnx_call(path: Path, x: np.ndarray):  # noqa: ANN201
    s = session(path)
    feed = {s.get_inputs()[0].name: x}
    return lambda: s.run(None, feed)


def tflite_call(path: Path):  # noqa: ANN201
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(str(path), num_threads=1)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    x = np.zeros(detail["shape"], dtype=detail["dtype"])

    def call() -> None:
        interpreter.set_tensor(detail["index"], x)
        interpreter.invoke()
    return call


def run_image_data(run: Path, report: dict):  # noqa: ANN201 - (PreprocessSpec, ImageData)
    """A finished run's recipe (its preprocess.json) and its data decoded by it (load_image_data caches it)."""
    from edgekit.data.loading import load_image_data
    from edgekit.data.preprocess import PreprocessSpec

    doc = json.loads((run / "artifacts" / "preprocess.json").read_text(encoding="utf-8"))
    spec = PreprocessSpec(size=tuple(doc["size"]), mean=tuple(doc["mean"]), std=tuple(doc["std"]))
    return spec, load_image_data(report["settings"]["data"], spec)


def run_data(run: Path) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray]:
    """A finished run's report, its test split (preprocessed NCHW, labels) and a seeded calibration sample of its
    training images, preprocessed by the run's recipe."""
    import torch

    report = json.loads((run / "report.json").read_text(encoding="utf-8"))
    spec, data = run_image_data(run, report)
    images, labels = data.splits[data.eval_split]
    train, _ = data.splits["train"]
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:CALIBRATION_IMAGES]
    return report, spec.normalize(images).numpy(), np.asarray(labels), spec.normalize(train[pick]).numpy()


def measure_run(run: Path, work: Path) -> dict:
    from edgekit.models.predictions import load_logits

    report, x, labels, calibration = run_data(run)
    artifacts = run / "artifacts"
    peer = work / "model_int8_quantize_static.onnx"
    peer_quantize(artifacts / "model_fp32.onnx", peer, calibration)
    reference = load_logits(run / "quantize").numpy().argmax(1)
    files = {"model_fp32.onnx": artifacts / "model_fp32.onnx", "model_int8.onnx (edgekit)": artifacts / "model_int8.onnx",
             "model_int8.onnx (quantize_static)": peer}
    rows = []
    for name, path in files.items():
        predicted = top1(path, x)
        rows.append({"file": name, "bytes": path.stat().st_size, "accuracy": round(float((predicted == labels).mean()), 5),
                     "agreement_with_pytorch_int8": round(float((predicted == reference).mean()), 5),
                     "graph": graph_ops(path)})
    one = x[:1]
    p50, rounds = interleaved_p50({**{n: onnx_call(p, one) for n, p in files.items()},
                                   "model_fp32.tflite": tflite_call(artifacts / "model_fp32.tflite"),
                                   "model_int8.tflite": tflite_call(artifacts / "model_int8.tflite")})
    for row in rows:
        row["p50_ms"] = p50[row["file"]]
    pytorch_int8 = json.loads((run / "quantize" / "stage.json").read_text())["result"]
    return {"model": f"the run's student ({report['students'][0].get('arch', 'student')})", "images": int(len(labels)),
            "pytorch_int8_accuracy": pytorch_int8["accuracy"], "weight_range": pytorch_int8.get("weight_range"),
            "rows": rows, "tflite_p50_ms": {k: p50[k] for k in ("model_fp32.tflite", "model_int8.tflite")},
            "ours_over_quantize_static": ratio_interval(rounds["model_int8.onnx (edgekit)"],
                                                        rounds["model_int8.onnx (quantize_static)"])}


def measure_mobilenet224(work: Path) -> dict:
    """Timing only: untrained MobileNetV2 1.0 at 224 px, random calibration images."""
    import torch
    import torchvision

    from edgekit.export.onnx_format import export_onnx
    from edgekit.export.tflite_format import export_tflite
    from edgekit.quantize import pt2e

    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v2(width_mult=1.0, num_classes=1000).eval()
    calibration = torch.rand(32, 3, 224, 224)
    fp32 = work / "mnv2_fp32.onnx"
    export_onnx(model, calibration[:1], fp32, {})
    files = {"FP32 ONNX": fp32}
    for weight_range in ("full", "reduced"):
        prepared = pt2e.prepare(model, calibration[:2], "ptq", weight_range)
        with torch.no_grad():
            for i in range(0, len(calibration), 8):
                prepared(calibration[i:i + 8])
        pt2e.to_eval(prepared)
        converted = pt2e.convert(prepared)
        path = work / f"mnv2_int8_{weight_range}.onnx"
        export_onnx(pt2e.fold_weights(converted), calibration[:1], path, {}, int8=True)
        files[f"INT8 ONNX edgekit ({weight_range} weights)"] = path
        if weight_range == "full":
            export_tflite(converted, calibration[:1], work / "mnv2_int8.tflite", int8=True)
    peer = work / "mnv2_int8_quantize_static.onnx"
    peer_quantize(fp32, peer, calibration.numpy())
    files["INT8 ONNX quantize_static"] = peer
    export_tflite(model, calibration[:1], work / "mnv2_fp32.tflite", int8=False)
    one = calibration[:1].numpy()
    global RUNS_PER_ROUND
    RUNS_PER_ROUND = 20
    p50, rounds = interleaved_p50({**{n: onnx_call(p, one) for n, p in files.items()},
                                   "FP32 TFLite": tflite_call(work / "mnv2_fp32.tflite"),
                                   "INT8 TFLite": tflite_call(work / "mnv2_int8.tflite")})
    return {"model": "MobileNetV2 1.0, 224 px, untrained (timing only)",
            "rows": [{"file": n, "bytes": p.stat().st_size, "p50_ms": p50[n], "graph": graph_ops(p)} for n, p in files.items()],
            "tflite_p50_ms": {k: p50[k] for k in ("FP32 TFLite", "INT8 TFLite")},
            "ours_over_quantize_static": ratio_interval(rounds["INT8 ONNX edgekit (full weights)"],
                                                        rounds["INT8 ONNX quantize_static"])}


def render(result: dict) -> str:
    lines = [f"# INT8 ONNX: edgekit's file against onnxruntime's quantize_static ({result['name']})", "",
             f"Command: `python benchmarks/onnx_int8_peer.py --run <run> --name {result['name']}"
             f"{' --mobilenet224' if 'mobilenet224' in result else ''}` on a run made by `{result['run_command']}`  ",
             f"Date: {result['date']}  ", f"Commit: {result['commit']}  ", f"Machine: {result['machine']}  ",
             f"Load average when timing started: {result['load_average']}", "",
             "Plain sessions: `onnxruntime.InferenceSession(path)` with default options but 1 intra-op thread, "
             "batch 1; p50 over interleaved rounds. *Graph* is what onnxruntime runs (its optimized model). "
             "*ours / quantize_static* is the median of the per-round ratios of the two files' medians, with a 95 % "
             "bootstrap interval over the rounds: a file is slower only when the whole interval is above 1.", ""]
    for key in ("run", "mobilenet224"):
        if key not in result:
            continue
        part = result[key]
        fp32 = part["rows"][0]["p50_ms"]
        lines += [f"## {part['model']}", ""]
        if key == "run":
            lines += [f"PyTorch INT8 graph: {100 * part['pytorch_int8_accuracy']:.2f} % on {part['images']} test "
                      f"images (weights: {part['weight_range']} range).", ""]
            lines += ["| File | Bytes | Accuracy | Agreement with PyTorch INT8 | p50 ms | vs FP32 | QLinearConv | Conv | "
                      "Clip | QLinearAdd | Add | Q | DQ | Transpose |", "|" + "---|" * 14]
        else:
            lines += ["| File | Bytes | p50 ms | vs FP32 | QLinearConv | Conv | Clip | QLinearAdd | Add | Q | DQ | "
                      "Transpose |", "|" + "---|" * 12]
        for r in part["rows"]:
            g = r["graph"]
            ops = (f"{g['QLinearConv']} | {g['Conv']} | {g['Clip']} | {g['QLinearAdd']} | {g['Add']} | "
                   f"{g['QuantizeLinear']} | {g['DequantizeLinear']} | {g['Transpose']}")
            speed = f"{fp32 / r['p50_ms']:.2f}× faster" if r["p50_ms"] < fp32 else f"{r['p50_ms'] / fp32:.2f}× slower"
            if key == "run":
                lines.append(f"| {r['file']} | {r['bytes']:,} | {100 * r['accuracy']:.2f} % | "
                             f"{100 * r['agreement_with_pytorch_int8']:.2f} % | {r['p50_ms']:.3f} | {speed} | {ops} |")
            else:
                lines.append(f"| {r['file']} | {r['bytes']:,} | {r['p50_ms']:.3f} | {speed} | {ops} |")
        r = part["ours_over_quantize_static"]
        lines += ["", f"ours / quantize_static: {r['median']:.3f} (95 % interval {r['low']:.3f}–{r['high']:.3f}, "
                  f"{r['rounds']} rounds)."]
        t = list(part["tflite_p50_ms"].values())
        lines += ["", f"LiteRT (XNNPACK, 1 thread): FP32 {t[0]:.3f} ms, INT8 {t[1]:.3f} ms: INT8 "
                  f"{t[0] / t[1]:.2f}× faster than FP32." if t[1] < t[0] else
                  f"LiteRT (XNNPACK, 1 thread): FP32 {t[0]:.3f} ms, INT8 {t[1]:.3f} ms: INT8 {t[1] / t[0]:.2f}× slower.", ""]
    lines += ["Checks:", ""]
    lines += [f"- {'pass' if c['pass'] else 'MISS'}: {k} ({c['value']})" for k, c in result["checks"].items()]
    return "\n".join(lines) + "\n"


def _no_slower(ours: dict, peer: dict, ratio: dict) -> tuple[str, bool]:
    """Slower only when the whole 95 % interval of the per-round ratio is above 1."""
    return (f"{ours['p50_ms']:.3f} / {peer['p50_ms']:.3f}; {ratio['median']:.3f} [{ratio['low']:.3f}, "
            f"{ratio['high']:.3f}]", ratio["low"] <= 1.0)


def main() -> int:
    parser = run_arguments(__doc__)
    parser.add_argument("--mobilenet224", action="store_true", help="also time MobileNetV2 1.0 at 224 px")
    args = parser.parse_args()
    result: dict = {"load_average": [round(v, 2) for v in os.getloadavg()]}
    with tempfile.TemporaryDirectory() as tmp:
        result["run"] = measure_run(args.run, Path(tmp))
        if args.mobilenet224:
            result["mobilenet224"] = measure_mobilenet224(Path(tmp))
    stamp(result, args)
    result["machine"] = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}"
    rows = {r["file"]: r for r in result["run"]["rows"]}
    ours, peer = rows["model_int8.onnx (edgekit)"], rows["model_int8.onnx (quantize_static)"]
    points = round(100 * (ours["accuracy"] - result["run"]["pytorch_int8_accuracy"]), 2)
    g = ours["graph"]
    checks = {"plain-session INT8 ONNX within 0.3 point of the PyTorch INT8 graph (points)": (points, abs(points) <= 0.3),
              "fully integer: no float Conv, no Clip, Q/DQ only at the edges (float Conv, Clip, Q+DQ)":
                  (f"{g['Conv']}, {g['Clip']}, {g['QuantizeLinear'] + g['DequantizeLinear']}",
                   g["Conv"] == g["Clip"] == 0 and g["QuantizeLinear"] <= 2 and g["DequantizeLinear"] <= 2),
              "no slower than quantize_static's file (p50 ms ours / theirs; per-round ratio, 95 % interval)":
                  _no_slower(ours, peer, result["run"]["ours_over_quantize_static"])}
    if "mobilenet224" in result:
        m = {r["file"]: r["p50_ms"] for r in result["mobilenet224"]["rows"]}
        ratio = m["FP32 ONNX"] / m["INT8 ONNX edgekit (full weights)"]
        checks["MobileNetV2 224 px: INT8 ONNX ≥ 1.3× faster than FP32 (ratio)"] = (round(ratio, 2), ratio >= 1.3)
        rows224 = {r["file"]: r for r in result["mobilenet224"]["rows"]}
        checks["MobileNetV2 224 px: no slower than quantize_static's file (p50 ms ours / theirs; per-round ratio, "
               "95 % interval)"] = _no_slower(rows224["INT8 ONNX edgekit (full weights)"],
                                              rows224["INT8 ONNX quantize_static"],
                                              result["mobilenet224"]["ours_over_quantize_static"])
    result["checks"] = {k: {"value": v, "pass": bool(ok)} for k, (v, ok) in checks.items()}
    write_results(f"onnx_int8_peer_{args.name}", result, render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
