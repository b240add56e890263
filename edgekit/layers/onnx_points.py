"""Each layer's output inside an .onnx: after its Conv/Gemm and the Relu/Clip that follow it, at the QuantizeLinear
that stores it (INT8 files) or the last of those ops (FP32 files), read as extra graph outputs.

Only graph outputs are added (as onnxruntime's ``qdq_loss_debug`` does): the INT8 file exposes the integer
output of its QuantizeLinear, which a fused QLinearConv produces itself, so the session still runs the
integer kernels an app's plain session runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekit.layers.file_match import match_layers
from edgekit.layers.torch_points import Layer
from edgekit.runtime.ort_session import open_session
from edgekit.runtime.runners import prepare_input

COMPUTE = {"Conv", "Gemm", "MatMul"}
ACTIVATIONS = {"Relu", "Clip"}


def _constants(model: Any) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    values = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def _weight(node: Any, producers: dict[str, Any], constants: dict[str, np.ndarray]) -> np.ndarray | None:
    """The node's weight in PyTorch's layout: an int8 initializer behind a DequantizeLinear, or a float one."""
    name = node.input[1]
    if name in producers and producers[name].op_type == "DequantizeLinear":
        name = producers[name].input[0]
    weight = constants.get(name)
    if weight is None:
        return None
    transposed = node.op_type == "MatMul" or (node.op_type == "Gemm" and not any(
        a.name == "transB" and a.i for a in node.attribute))
    return weight.T if transposed and weight.ndim == 2 else weight


def onnx_layer_outputs(path: Path, entry: dict[str, Any], layers: list[Layer],
                       x_nchw: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """module path -> the layer's output in the file (float, NCHW) for the batch, and the tensor name of each."""
    import onnx

    model = onnx.load(str(path))
    constants = _constants(model)
    producers = {out: node for node in model.graph.node for out in node.output}
    consumers: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    weights, points = {}, {}
    for node in model.graph.node:
        if node.op_type not in COMPUTE or len(node.input) < 2:
            continue
        weight = _weight(node, producers, constants)
        if weight is None:
            continue
        tensor, scale = node.output[0], None
        while len(consumers.get(tensor, [])) == 1 and consumers[tensor][0].op_type in ACTIVATIONS:
            tensor = consumers[tensor][0].output[0]
        quant = next((c for c in consumers.get(tensor, []) if c.op_type == "QuantizeLinear"), None)
        if quant is not None:
            tensor = quant.output[0]
            scale = (float(constants[quant.input[1]]), int(constants[quant.input[2]]) if len(quant.input) > 2 else 0)
        weights[node.name] = weight
        points[node.name] = (tensor, scale)
    found = match_layers(layers, weights, path.name)
    names = {p: points[k][0] for p, k in found.items()}
    graph_outputs = {o.name for o in model.graph.output}
    for name in names.values():
        if name not in graph_outputs:
            model.graph.output.append(onnx.ValueInfoProto(name=name))
            graph_outputs.add(name)
    session = open_session(model.SerializeToString())
    wanted = list(dict.fromkeys(names.values()))
    raw = dict(zip(wanted, session.run(wanted, {entry["input"]: prepare_input(entry, x_nchw)})))
    values = {}
    for p, k in found.items():
        tensor, scale = points[k]
        value = raw[tensor]
        values[p] = ((value.astype(np.float32) - scale[1]) * scale[0]) if scale else value.astype(np.float32)
    return values, names
