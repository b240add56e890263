"""Run an artifact in its own runtime (onnxruntime, LiteRT), fed as preprocess.json tells an app to.

Input: float NCHW images already through the preprocessing recipe. Each runner lays them out and
quantizes them by the artifact's entry in preprocess.json, and returns float logits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekit.bench.ort_session import SESSION_CONFIG, open_session
from edgekit.data.preprocess import dequantize_output, quantize_input
from edgekit.export.quiet import quiet_fds

DTYPES = {"float32": np.float32, "int8": np.int8, "uint8": np.uint8}


class OnnxRunner:
    runtime = "onnxruntime"

    def __init__(self, path: Path, entry: dict[str, Any], threads: int) -> None:
        self.session = open_session(path, threads)
        self.entry = entry
        self.input_name = entry["input"]

    def __call__(self, x_nchw: np.ndarray) -> np.ndarray:
        x = x_nchw if self.entry["layout"] == "NCHW" else x_nchw.transpose(0, 2, 3, 1)
        return self.session.run(None, {self.input_name: np.ascontiguousarray(x, dtype=np.float32)})[0]


class LiteRTRunner:
    runtime = "ai-edge-litert"

    def __init__(self, path: Path, entry: dict[str, Any], threads: int) -> None:
        from ai_edge_litert.interpreter import Interpreter

        with quiet_fds():  # LiteRT logs its delegate creation on stderr
            self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
            self.interpreter.allocate_tensors()
        self.input_index = self.interpreter.get_input_details()[0]["index"]
        self.output_index = self.interpreter.get_output_details()[0]["index"]
        self.entry = entry

    def _prepare(self, x_nchw: np.ndarray) -> np.ndarray:
        e = self.entry
        x = x_nchw.transpose(0, 2, 3, 1) if e["layout"] == "NHWC" else x_nchw
        dtype = DTYPES[e["input_dtype"]]
        if dtype != np.float32:
            return quantize_input(x, e["input_scale"], e["input_zero_point"], dtype)
        return np.ascontiguousarray(x, dtype=np.float32)

    def invoke_one(self, x: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self.input_index, x)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output_index)

    def __call__(self, x_nchw: np.ndarray) -> np.ndarray:
        x = self._prepare(x_nchw)
        outs = np.concatenate([self.invoke_one(x[i:i + 1]) for i in range(len(x))])
        e = self.entry
        if e["output_dtype"] != "float32":
            return dequantize_output(outs, e["output_scale"], e["output_zero_point"])
        return outs.astype(np.float32)

    def prepared_single(self, x_nchw: np.ndarray) -> np.ndarray:
        """One input already laid out and quantized, for latency loops that time the runtime alone."""
        return self._prepare(x_nchw[:1])


def open_runner(path: Path, entry: dict[str, Any], threads: int) -> OnnxRunner | LiteRTRunner:
    return OnnxRunner(path, entry, threads) if Path(path).suffix == ".onnx" else LiteRTRunner(path, entry, threads)


def tflite_io(path: Path) -> dict[str, Any]:
    """Input/output name, dtype and quantization of a .tflite file, as preprocess.json states them."""
    from ai_edge_litert.interpreter import Interpreter

    with quiet_fds():
        interpreter = Interpreter(model_path=str(path))
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    entry: dict[str, Any] = {"input": inp["name"], "layout": "NHWC", "input_shape": [int(v) for v in inp["shape"]],
                             "input_dtype": np.dtype(inp["dtype"]).name, "output": out["name"],
                             "output_dtype": np.dtype(out["dtype"]).name}
    if entry["input_dtype"] != "float32":
        entry["input_scale"], entry["input_zero_point"] = float(inp["quantization"][0]), int(inp["quantization"][1])
    if entry["output_dtype"] != "float32":
        entry["output_scale"], entry["output_zero_point"] = float(out["quantization"][0]), int(out["quantization"][1])
    return entry


def onnx_io(path: Path) -> dict[str, Any]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inp, out = session.get_inputs()[0], session.get_outputs()[0]
    as_name = {"tensor(float)": "float32", "tensor(int8)": "int8", "tensor(uint8)": "uint8"}
    return {"input": inp.name, "layout": "NCHW", "input_shape": [d if isinstance(d, int) else -1 for d in inp.shape],
            "input_dtype": as_name.get(inp.type, inp.type), "output": out.name,
            "output_dtype": as_name.get(out.type, out.type), "session_config": dict(SESSION_CONFIG)}
