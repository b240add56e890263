"""Run an artifact in its own runtime (onnxruntime, LiteRT; ExecuTorch in executorch_runner.py), fed and read
as preprocess.json tells an app to.

Input: float NCHW images already through the preprocessing recipe. Each runner lays them out and
quantizes them by the artifact's entry in preprocess.json, and gives every output by name, dequantized
to float: ``logits`` for a classifier, ``scores`` and ``boxes`` (channel-major) for a detector. The entry's
``outputs`` map says which of the file's outputs is which; a classifier's entry written before that map
existed names its one output with ``output``/``output_dtype``/``output_scale``, which is read the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.runtime.ort_session import SESSION_CONFIG, open_session
from edgekit.data.preprocess import dequantize_output, quantize_input
from edgekit.registry import runner_class
from edgekit.runtime.quiet import quiet_fds

DTYPES = {"float32": np.float32, "int8": np.int8, "uint8": np.uint8}
ONNX_TYPES = {"tensor(float)": "float32", "tensor(int8)": "int8", "tensor(uint8)": "uint8"}


def output_map(entry: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """name -> {index, dtype, scale, zero_point} of each output the app reads."""
    if "outputs" in entry:
        return entry["outputs"]
    one = {"index": 0, "dtype": entry["output_dtype"]}
    if entry["output_dtype"] != "float32":
        one.update(scale=entry["output_scale"], zero_point=entry["output_zero_point"])
    return {"logits": one}


def prepare_input(entry: dict[str, Any], x_nchw: np.ndarray) -> np.ndarray:
    """A batch laid out and (for an integer input) quantized as the file's preprocess.json entry says."""
    x = x_nchw.transpose(0, 2, 3, 1) if entry["layout"] == "NHWC" else x_nchw
    dtype = DTYPES[entry["input_dtype"]]
    if dtype != np.float32:
        return quantize_input(x, entry["input_scale"], entry["input_zero_point"], dtype)
    return np.ascontiguousarray(x, dtype=np.float32)


class _Runner:
    runtime: str

    def __init__(self, entry: dict[str, Any]) -> None:
        self.entry = entry
        self.outputs_read = output_map(entry)

    def prepare(self, x_nchw: np.ndarray) -> np.ndarray:
        """Lay out and (for an integer input) quantize a batch, as an app would."""
        return prepare_input(self.entry, x_nchw)

    def prepared_single(self, x_nchw: np.ndarray) -> np.ndarray:
        """One input already laid out and quantized, for latency loops that time the runtime alone."""
        return self.prepare(x_nchw[:1])

    def run_prepared(self, x: np.ndarray) -> list[np.ndarray]:
        """The file's raw outputs for one prepared input, in its own order (what latency times)."""
        raise NotImplementedError

    def _named(self, raw: list[np.ndarray]) -> dict[str, np.ndarray]:
        named = {}
        for name, o in self.outputs_read.items():
            y = raw[o["index"]]
            named[name] = (dequantize_output(y, o["scale"], o["zero_point"]) if o["dtype"] != "float32"
                           else y.astype(np.float32))
        return named

    def outputs(self, x_nchw: np.ndarray) -> dict[str, np.ndarray]:
        """Every output for a batch, by name, in float."""
        raise NotImplementedError

    def _image_by_image(self, x_nchw: np.ndarray) -> dict[str, np.ndarray]:
        """``outputs`` for a file that takes one image at a time."""
        x = self.prepare(x_nchw)
        parts = [self._named(self.run_prepared(x[i:i + 1])) for i in range(len(x))]
        return {name: np.concatenate([p[name] for p in parts]) for name in self.outputs_read}

    def __call__(self, x_nchw: np.ndarray) -> np.ndarray:
        """The first output (a classifier's logits) for a batch."""
        return next(iter(self.outputs(x_nchw).values()))


class OnnxRunner(_Runner):
    runtime = "onnxruntime"

    def __init__(self, path: Path, entry: dict[str, Any], threads: int | None) -> None:
        super().__init__(entry)
        self.session = open_session(path, threads)
        self.input_name = entry["input"]

    def run_prepared(self, x: np.ndarray) -> list[np.ndarray]:
        return self.session.run(None, {self.input_name: x})

    def outputs(self, x_nchw: np.ndarray) -> dict[str, np.ndarray]:
        return self._named(self.run_prepared(self.prepare(x_nchw)))


class LiteRTRunner(_Runner):
    runtime = "ai-edge-litert"

    def __init__(self, path: Path, entry: dict[str, Any], threads: int | None) -> None:
        from ai_edge_litert.interpreter import Interpreter

        super().__init__(entry)
        with quiet_fds():  # LiteRT logs its delegate creation on stderr
            self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
            self.interpreter.allocate_tensors()
        self.input_index = self.interpreter.get_input_details()[0]["index"]
        self.output_indices = [d["index"] for d in self.interpreter.get_output_details()]

    def run_prepared(self, x: np.ndarray) -> list[np.ndarray]:
        self.interpreter.set_tensor(self.input_index, x)
        self.interpreter.invoke()
        return [self.interpreter.get_tensor(i) for i in self.output_indices]

    def invoke_one(self, x: np.ndarray) -> np.ndarray:
        """The first raw output of one prepared input."""
        return self.run_prepared(x)[0]

    def outputs(self, x_nchw: np.ndarray) -> dict[str, np.ndarray]:
        return self._image_by_image(x_nchw)


def open_runner(path: Path, entry: dict[str, Any], threads: int | None = 1) -> _Runner:
    """The runner of the file's format (edgekit/registry.py ``FORMATS`` and ``RUNTIMES``)."""
    return runner_class(path)(path, entry, threads)


def _quantization(detail: dict[str, Any]) -> dict[str, Any]:
    dtype = np.dtype(detail["dtype"]).name
    if dtype == "float32":
        return {"dtype": dtype}
    return {"dtype": dtype, "scale": float(detail["quantization"][0]), "zero_point": int(detail["quantization"][1])}


def tflite_io(path: Path, names: tuple[str, ...] = ("logits",),
              order: Callable[[list[list[int]]], list[int]] | None = None) -> dict[str, Any]:
    """Input/output names, dtypes and quantization of a .tflite file, as preprocess.json states them.

    ``order`` maps the file's output shapes to the index of the output called ``names[k]`` (LiteRT may
    reorder outputs; the task tells them apart). A one-output file also gets the flat ``output*`` keys."""
    from ai_edge_litert.interpreter import Interpreter

    with quiet_fds():
        interpreter = Interpreter(model_path=str(path))
    inp, outs = interpreter.get_input_details()[0], interpreter.get_output_details()
    q_in = _quantization(inp)
    entry: dict[str, Any] = {"input": inp["name"], "layout": "NHWC", "input_shape": [int(v) for v in inp["shape"]],
                             "input_dtype": q_in["dtype"]}
    if "scale" in q_in:
        entry["input_scale"], entry["input_zero_point"] = q_in["scale"], q_in["zero_point"]
    indices = order([[int(v) for v in d["shape"]] for d in outs]) if order else list(range(len(outs)))
    entry["outputs"] = {name: {"index": i, **_quantization(outs[i])} for name, i in zip(names, indices)}
    if len(outs) == 1:
        q = _quantization(outs[0])
        entry.update(output=outs[0]["name"], output_dtype=q["dtype"])
        if "scale" in q:
            entry["output_scale"], entry["output_zero_point"] = q["scale"], q["zero_point"]
    return entry


def onnx_io(path: Path) -> dict[str, Any]:
    """Input/output names and dtypes of an .onnx file; its outputs keep their exported names."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inp, outs = session.get_inputs()[0], session.get_outputs()
    entry: dict[str, Any] = {"input": inp.name, "layout": "NCHW",
                             "input_shape": [d if isinstance(d, int) else -1 for d in inp.shape],
                             "input_dtype": ONNX_TYPES.get(inp.type, inp.type)}
    if len(outs) == 1:
        entry.update(output=outs[0].name, output_dtype=ONNX_TYPES.get(outs[0].type, outs[0].type))
    entry["session_config"] = dict(SESSION_CONFIG)
    entry["outputs"] = {o.name if len(outs) > 1 else "logits": {"index": i, "dtype": ONNX_TYPES.get(o.type, o.type)}
                        for i, o in enumerate(outs)}
    return entry
