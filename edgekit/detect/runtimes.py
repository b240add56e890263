"""Run a detection artifact in its own runtime (onnxruntime, LiteRT), fed and read as preprocess.json says.

Input: float NCHW images already through the preprocessing recipe. Output: the raw ``scores`` [N, C, A]
and ``boxes`` [N, 4, A] (channel-major, float), for the shared numpy post-processing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekit.bench.ort_session import open_session
from edgekit.data.preprocess import dequantize_output, quantize_input
from edgekit.export.quiet import quiet_fds

OUTPUTS = ("scores", "boxes")


class DetectionRunner:
    def __init__(self, path: Path, entry: dict[str, Any], threads: int = 1) -> None:
        self.path, self.entry = Path(path), entry
        self.runtime = "onnxruntime" if self.path.suffix == ".onnx" else "ai-edge-litert"
        if self.runtime == "onnxruntime":
            self.session = open_session(path, threads)
        else:
            from ai_edge_litert.interpreter import Interpreter

            with quiet_fds():  # LiteRT logs its delegate creation on stderr
                self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
                self.interpreter.allocate_tensors()
            self.input_index = self.interpreter.get_input_details()[0]["index"]
            self.output_details = self.interpreter.get_output_details()

    def prepare(self, x_nchw: np.ndarray) -> np.ndarray:
        """Lay out and (for an integer input) quantize a batch, as an app would."""
        e = self.entry
        if self.runtime == "onnxruntime":
            return np.ascontiguousarray(x_nchw, dtype=np.float32)
        x = x_nchw.transpose(0, 2, 3, 1)
        if e["input_dtype"] != "float32":
            return quantize_input(x, e["input_scale"], e["input_zero_point"], np.dtype(e["input_dtype"]))
        return np.ascontiguousarray(x, dtype=np.float32)

    def run_prepared(self, x: np.ndarray) -> list[np.ndarray]:
        """Raw outputs of one prepared input, in the file's order (what latency times)."""
        if self.runtime == "onnxruntime":
            return self.session.run(None, {self.entry["input"]: x})
        self.interpreter.set_tensor(self.input_index, x)
        self.interpreter.invoke()
        return [self.interpreter.get_tensor(d["index"]) for d in self.output_details]

    def _named(self, raw: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        got = []
        for name in OUTPUTS:
            o = self.entry["outputs"][name]
            y = raw[o["index"]]
            got.append(dequantize_output(y, o["scale"], o["zero_point"]) if o["dtype"] != "float32"
                       else y.astype(np.float32))
        return got[0], got[1]

    def __call__(self, x_nchw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = self.prepare(x_nchw)
        if self.runtime == "onnxruntime":
            return self._named(self.run_prepared(x))
        parts = [self._named(self.run_prepared(x[i:i + 1])) for i in range(len(x))]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def run_file(path: Path, entry: dict[str, Any], x_nchw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores and boxes of a file for a batch, fed and read exactly as preprocess.json says."""
    return DetectionRunner(path, entry)(x_nchw)
