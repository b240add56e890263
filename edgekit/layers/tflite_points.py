"""Each layer's output inside a .tflite: the output tensor of its CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED
op (activations are fused into it), read with LiteRT's ``experimental_preserve_all_tensors``.

Intermediate tensors exist only outside a delegate, so the file runs on LiteRT's built-in kernels here (the
default XNNPACK delegate would hide them); the file's final outputs are compared the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekit.layers.file_match import match_layers
from edgekit.layers.torch_points import Layer
from edgekit.runtime.quiet import quiet_fds
from edgekit.runtime.runners import prepare_input

# TFLite filter layout -> PyTorch's: CONV_2D OHWI -> OIHW, DEPTHWISE_CONV_2D 1HWC -> C1HW, FULLY_CONNECTED as is.
TO_TORCH = {"CONV_2D": (0, 3, 1, 2), "DEPTHWISE_CONV_2D": (3, 0, 1, 2), "FULLY_CONNECTED": None}
ACTIVATIONS = {"RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1"}


def _interpreter(path: Path) -> Any:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    with quiet_fds():
        interpreter = Interpreter(model_path=str(path), experimental_preserve_all_tensors=True,
                                  experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        interpreter.allocate_tensors()
    return interpreter


def _float(interpreter: Any, index: int) -> np.ndarray:
    detail = interpreter._get_tensor_details(index, 0)
    value = interpreter.get_tensor(index)
    if value.dtype != np.float32:
        scale, zero = detail["quantization"]
        value = (value.astype(np.float32) - zero) * scale
    return value.transpose(0, 3, 1, 2) if value.ndim == 4 else value  # NHWC -> NCHW


def tflite_layer_outputs(path: Path, entry: dict[str, Any], layers: list[Layer],
                         x_nchw: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """module path -> the layer's output in the file (float, NCHW) for the batch, and the tensor index of each."""
    interpreter = _interpreter(path)
    ops = interpreter._get_ops_details()
    consumers: dict[int, list[dict[str, Any]]] = {}
    for op in ops:
        for index in op["inputs"]:
            consumers.setdefault(int(index), []).append(op)
    weights, outputs = {}, {}
    for op in ops:
        if op["op_name"] not in TO_TORCH or len(op["inputs"]) < 2:
            continue
        filt = interpreter.get_tensor(int(op["inputs"][1]))
        order = TO_TORCH[op["op_name"]]
        key = str(op["index"])
        weights[key] = filt.transpose(order) if order else filt
        outputs[key] = int(op["outputs"][0])
    found = match_layers(layers, weights, path.name)
    tensors = {}
    for layer in layers:
        tensor = outputs[found[layer.path]]
        for _ in layer.activations:  # an activation the converter left as an op of its own (not fused)
            after = consumers.get(tensor, [])
            if len(after) != 1 or after[0]["op_name"] not in ACTIVATIONS:
                break
            tensor = int(after[0]["outputs"][0])
        tensors[layer.path] = tensor
    x = prepare_input(entry, x_nchw)
    input_index = interpreter.get_input_details()[0]["index"]
    values: dict[str, list[np.ndarray]] = {p: [] for p in tensors}
    for i in range(len(x)):
        interpreter.set_tensor(input_index, x[i:i + 1])
        interpreter.invoke()
        for p, index in tensors.items():
            values[p].append(_float(interpreter, index))
    return {p: np.concatenate(v) for p, v in values.items()}, tensors
