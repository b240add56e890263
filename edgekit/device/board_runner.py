"""Latency of one .tflite, .onnx or .pte file on this machine: the file edgekit copies to a board and runs there.

Self-contained on purpose (standard library, numpy and the runtime only; no edgekit import), so
the board needs nothing but its Python and ai-edge-litert (or tflite-runtime), onnxruntime or executorch:

    python3 board_runner.py model_int8.tflite --threads 4 --runs 100 --warmup 10

Prints one JSON object: p50/p90/mean milliseconds, the runtime and its version, the machine.
"""

import argparse
import json
import platform
import sys
import time

import numpy as np


def _litert(path, threads):
    try:
        from ai_edge_litert.interpreter import Interpreter
        import ai_edge_litert as module
    except ImportError:
        from tflite_runtime.interpreter import Interpreter  # older boards
        import tflite_runtime as module
    interpreter = Interpreter(model_path=path, num_threads=threads)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    x = _input(detail["shape"], detail["dtype"])
    index = detail["index"]

    def run():
        interpreter.set_tensor(index, x)
        interpreter.invoke()
    return run, module.__name__, getattr(module, "__version__", "unknown")


def _onnx(path, threads):
    import onnxruntime as ort

    opts = ort.SessionOptions()  # a plain session, as an app opens the file (edgekit/runtime/ort_session.py)
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    detail = session.get_inputs()[0]
    dtype = np.float32 if "float" in detail.type else np.int8
    shape = [d if isinstance(d, int) and d > 0 else 1 for d in detail.shape]
    feed = {detail.name: _input(shape, dtype)}
    return (lambda: session.run(None, feed)), "onnxruntime", ort.__version__


def _executorch(path, threads):
    from importlib import metadata

    import torch
    from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool
    from executorch.runtime import Runtime

    _unsafe_reset_threadpool(threads)  # the XNNPACK delegate runs on ExecuTorch's one threadpool
    method = Runtime.get().load_program(path).load_method("forward")
    detail = method.metadata.input_tensor_meta(0)
    dtype = {0: np.uint8, 1: np.int8}.get(detail.dtype(), np.float32)  # ExecuTorch's ScalarType codes
    x = torch.from_numpy(_input(list(detail.sizes()), dtype))
    return (lambda: method.execute([x])), "executorch", metadata.version("executorch")


def _input(shape, dtype):
    rng = np.random.default_rng(0)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
    return rng.random(shape, dtype=np.float32).astype(dtype)


def main():
    parser = argparse.ArgumentParser(description="Latency of a .tflite, .onnx or .pte file on this machine.")
    parser.add_argument("model")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--min-seconds", type=float, default=1.0, help="keep timing at least this long")
    args = parser.parse_args()
    load = _onnx if args.model.endswith(".onnx") else _executorch if args.model.endswith(".pte") else _litert
    run, runtime, version = load(args.model, args.threads)
    for _ in range(args.warmup):
        run()
    times = []
    started = time.perf_counter()
    while len(times) < args.runs or (time.perf_counter() - started < args.min_seconds and len(times) < 100000):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1e3)
    print(json.dumps({"p50": float(np.percentile(times, 50)), "p90": float(np.percentile(times, 90)),
                      "mean": float(np.mean(times)), "runs": len(times), "warmup": args.warmup,
                      "threads": args.threads, "runtime": runtime, "runtime_version": version,
                      "machine": platform.machine(), "python": platform.python_version(),
                      "node": platform.node()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
