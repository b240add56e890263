"""edgekit's INT8 files side by side with the peers' quantization of the same FP32 student (issue 21, part 3).

For a finished run: its FP32 student quantized by onnxruntime's ``quantize_static`` (from ``model_fp32.onnx``: QDQ,
per channel, uint8 activations with ``reduce_range``, int8 weights) and by the LiteRT quantizer (ai-edge-quantizer,
``static_wi8_ai8`` from ``model_fp32.tflite``), both calibrated on the same seeded sample of the run's training
images, and by NNCF's QAT (benchmarks/nncf_peer.py: ``nncf.quantize`` on the same sample, then the run's QAT epochs
with labels, ONNX through ``nncf.strip``), against edgekit's ``model_int8.onnx`` and ``model_int8.tflite``
(teacher-guided QAT by default). Each file
runs as an app opens it: a plain ``onnxruntime.InferenceSession(path)`` (1 thread) or the LiteRT interpreter with
its default delegate (1 thread), on the whole test split; size on disk; host latency of one image, timed in
interleaved rounds. The peers are benchmark extras (onnxruntime's quantizer ships with onnxruntime;
ai-edge-quantizer comes with litert-torch; NNCF: ``pip install -e '.[bench]'``), not runtime dependencies of edgekit.

    python benchmarks/peers.py --run DIR --name cifar10_budget [--run-command "edgekit compress ..."]

Writes benchmarks/results/peers_<name>.json and .md.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from app_clients import run_arguments, stamp, write_results  # noqa: E402 - sibling scripts
from nncf_peer import nncf_qat  # noqa: E402
from onnx_int8_peer import interleaved_p50, onnx_call, peer_quantize, run_data, session  # noqa: E402

GOAL_POINTS = 0.5


def litert_quantize(fp32: Path, out: Path, calibration_nhwc: np.ndarray) -> None:
    """ai-edge-quantizer's static a8w8 recipe on the FP32 .tflite, calibrated on ``calibration_nhwc``."""
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import quantizer, recipe

    signature = Interpreter(str(fp32)).get_signature_list()
    name, io = next(iter(signature.items()))
    data = {name: [{io["inputs"][0]: calibration_nhwc[i:i + 1]} for i in range(len(calibration_nhwc))]}
    qt = quantizer.Quantizer(str(fp32), recipe.static_wi8_ai8())
    qt.quantize(qt.calibrate(data)).export_model(str(out), overwrite=True)


def tflite_predict(path: Path, x_nhwc: np.ndarray) -> np.ndarray:
    """Top-1 of a .tflite fed as an app feeds it: its input dtype, quantized with its own scale when integer."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(str(path), num_threads=1)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    predicted = []
    for i in range(len(x_nhwc)):
        value = x_nhwc[i:i + 1]
        if inp["dtype"] != np.float32:
            scale, zero = inp["quantization"]
            info = np.iinfo(inp["dtype"])
            value = np.clip(np.round(value / scale + zero), info.min, info.max).astype(inp["dtype"])
        interpreter.set_tensor(inp["index"], value)
        interpreter.invoke()
        predicted.append(int(interpreter.get_tensor(out["index"]).argmax()))
    return np.asarray(predicted)


def onnx_predict(path: Path, x_nchw: np.ndarray) -> np.ndarray:
    s = session(path)
    name = s.get_inputs()[0].name
    return np.concatenate([s.run(None, {name: x_nchw[i:i + 1]})[0].argmax(1) for i in range(len(x_nchw))])


def tflite_call(path: Path, x_nhwc: np.ndarray):  # noqa: ANN201
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(str(path), num_threads=1)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    one = np.zeros(detail["shape"], dtype=detail["dtype"]) if detail["dtype"] != np.float32 else x_nhwc[:1]

    def call() -> None:
        interpreter.set_tensor(detail["index"], one)
        interpreter.invoke()
    return call


def measure(run: Path, work: Path) -> dict:
    report, x, labels, calibration = run_data(run)
    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    artifacts = run / "artifacts"
    peers = {"onnxruntime quantize_static": work / "model_int8_quantize_static.onnx",
             "LiteRT quantizer (ai-edge-quantizer a8w8)": work / "model_int8_ai_edge_quantizer.tflite",
             "NNCF QAT (model_int8_nncf.onnx)": work / "model_int8_nncf.onnx"}
    nncf = nncf_qat(run, report, calibration, peers["NNCF QAT (model_int8_nncf.onnx)"])
    peer_quantize(artifacts / "model_fp32.onnx", peers["onnxruntime quantize_static"], calibration)
    litert_quantize(artifacts / "model_fp32.tflite", peers["LiteRT quantizer (ai-edge-quantizer a8w8)"],
                    np.ascontiguousarray(calibration.transpose(0, 2, 3, 1)))
    method = json.loads((run / "quantize" / "stage.json").read_text())["result"]["method"].upper()
    files = {"FP32 student (model_fp32.tflite)": artifacts / "model_fp32.tflite",
             f"edgekit {method} (model_int8.onnx)": artifacts / "model_int8.onnx",
             f"edgekit {method} (model_int8.tflite)": artifacts / "model_int8.tflite", **peers}
    rows, calls = [], {}
    for name, path in files.items():
        tflite = path.suffix == ".tflite"
        predicted = tflite_predict(path, x_nhwc) if tflite else onnx_predict(path, x)
        rows.append({"file": name, "runtime": "ai-edge-litert" if tflite else "onnxruntime",
                     "bytes": path.stat().st_size, "accuracy": round(float((predicted == labels).mean()), 5)})
        calls[name] = tflite_call(path, x_nhwc) if tflite else onnx_call(path, x[:1])
    p50, _ = interleaved_p50(calls)
    for row in rows:
        row["p50_ms"] = p50[row["file"]]
    return {"student": report["students"][0].get("arch", "student"), "images": int(len(labels)),
            "calibration_images": int(len(calibration)), "nncf": nncf, "rows": rows}


def checks(result: dict) -> dict:
    ours = [r for r in result["rows"] if r["file"].startswith("edgekit")]
    peers = [r for r in result["rows"] if not r["file"].startswith(("edgekit", "FP32"))]
    best_peer = max(peers, key=lambda r: r["accuracy"])
    ahead = 100 * (min(r["accuracy"] for r in ours) - best_peer["accuracy"])
    # size against the peer file of the same format (an .onnx and a .tflite store the same weights differently)
    sizes: dict[str, int] = {}
    for r in peers:  # the smallest peer file of each format
        sizes[r["runtime"]] = min(r["bytes"], sizes.get(r["runtime"], r["bytes"]))
    size_rows = [{"file": r["file"], "bytes": r["bytes"], "peer_bytes": sizes[r["runtime"]]} for r in ours]
    return {"ours_ahead_points": round(ahead, 2), "ahead_pass": ahead >= GOAL_POINTS, "best_peer": best_peer["file"],
            "sizes": size_rows, "size_pass": all(r["bytes"] <= r["peer_bytes"] for r in size_rows)}


def render(result: dict) -> str:
    c = result["check"]
    lines = [f"# edgekit's INT8 files beside the peers' ({result['name']})", "",
             f"Run: `{result['run_command']}`  ", f"Then: `python benchmarks/peers.py --run RUN --name {result['name']}`  ",
             f"Date: {result['date']}  ", f"Commit: {result['commit']}  ", f"Machine: {result['machine']}", "",
             f"Student {result['student']}; accuracy on the whole test split ({result['images']} images), each file in "
             f"its own runtime as an app opens it; peers calibrated on the same {result['calibration_images']} training "
             "images; host latency of one image, 1 thread, interleaved rounds. NNCF QAT: "
             f"{result['nncf']['epochs']} epochs with labels at lr {result['nncf']['lr']} on "
             f"{result['nncf']['train_images']} training images (the run's QAT epochs and recipe; NNCF has no teacher), "
             f"seconds {result['nncf']['seconds']}.", "",
             "| File | Runtime | Accuracy | KiB | Host ms p50 |", "|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['file']} | {r['runtime']} | {100 * r['accuracy']:.2f} % | {r['bytes'] / 1024:.0f} | "
                     f"{r['p50_ms']:.3f} |")
    lines += ["", f"Goal: every edgekit INT8 file >= {GOAL_POINTS} point ahead of the best peer ({c['best_peer']}): "
              f"{c['ours_ahead_points']:+.2f} points, {'PASS' if c['ahead_pass'] else 'MISS'}; at equal or smaller "
              f"size than the peer of the same format: {'PASS' if c['size_pass'] else 'MISS'} ("
              + ", ".join(f"{r['file']} {r['bytes'] / 1024:.0f} vs {r['peer_bytes'] / 1024:.0f} KiB" for r in c["sizes"])
              + ")."]
    return "\n".join(lines) + "\n"


def main() -> int:
    args = run_arguments(__doc__).parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(args.run, Path(tmp))
    stamp(result, args)
    result["machine"] = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}"
    result["check"] = checks(result)
    write_results(f"peers_{args.name}", result, render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
