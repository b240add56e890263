"""Walk an .onnx graph (plain FP32 or QDQ INT8) into the operator list of op_costs.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.estimate.op_costs import CONV, DATA, DEPTHWISE, ELEMENTWISE, FULLY_CONNECTED, POOL, OpCost

KIND = {
    "Gemm": FULLY_CONNECTED, "MatMul": FULLY_CONNECTED,
    "AveragePool": POOL, "MaxPool": POOL, "GlobalAveragePool": POOL, "GlobalMaxPool": POOL,
    "ReduceMean": POOL, "ReduceSum": POOL, "ReduceMax": POOL,
    "Concat": DATA, "Transpose": DATA, "Resize": DATA, "Slice": DATA, "Split": DATA, "Pad": DATA,
    "Gather": DATA, "DepthToSpace": DATA, "SpaceToDepth": DATA, "Tile": DATA, "Expand": DATA,
}
# Metadata-only, or folded into integer kernels by onnxruntime's QDQ fusion.
FREE = {"QuantizeLinear", "DequantizeLinear", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity",
        "Constant", "Shape", "Cast"}
# Activations fused into the operator that produces their input (as XNNPACK and TFLite do).
FUSABLE_ACTIVATIONS = {"Relu", "Clip"}
FUSES_INTO = {"Conv", "Gemm", "MatMul", "Add"}
ITEMSIZE = {1: 4, 2: 1, 3: 1, 6: 4, 7: 8, 10: 2}  # FLOAT, UINT8, INT8, INT32, INT64, FLOAT16


def onnx_ops(path: Path) -> list[OpCost]:
    import onnx

    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    graph = model.graph
    shapes: dict[str, tuple[list[int], int]] = {}
    for info in list(graph.input) + list(graph.value_info) + list(graph.output):
        t = info.type.tensor_type
        shapes[info.name] = ([d.dim_value if d.dim_value > 0 else 1 for d in t.shape.dim], t.elem_type)
    constants = {init.name: (list(init.dims), init.data_type) for init in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}

    def source(name: str) -> tuple[str, bool]:
        """Follow DequantizeLinear/QuantizeLinear back: the real producer's op type, and whether the tensor is int8."""
        node, quantized = producer.get(name), False
        while node is not None and node.op_type in ("DequantizeLinear", "QuantizeLinear"):
            quantized = True
            node = producer.get(node.input[0])
        return (node.op_type if node is not None else ""), quantized

    def constant(name: str) -> tuple[list[int], int] | None:
        """Shape and element type of the initializer behind a weight input, through any Q/DQ/Transpose."""
        node = producer.get(name)
        while node is not None and node.op_type in ("DequantizeLinear", "QuantizeLinear", "Transpose"):
            name, node = node.input[0], producer.get(node.input[0])
        return constants.get(name)

    def is_constant(name: str) -> bool:
        return constant(name) is not None

    ops: list[OpCost] = []
    for node in graph.node:
        kind_name = node.op_type
        if kind_name in FREE or not node.output or node.output[0] not in shapes:
            continue
        if kind_name in FUSABLE_ACTIVATIONS and source(node.input[0])[0] in FUSES_INTO:
            continue
        quantized = source(node.input[0])[1]
        precision = "int8" if quantized else "fp32"
        size = 1 if quantized else 4
        out_shape = shapes[node.output[0]][0]
        out_elems = int(np.prod(out_shape))
        acts = [n for n in node.input if n and not is_constant(n) and n in shapes]
        weights = [n for n in node.input if n and is_constant(n)]
        if kind_name == "Conv":
            w = (constant(node.input[1]) or ([1, 1, 1, 1], 1))[0]
            group = next((a.i for a in node.attribute if a.name == "group"), 1)
            kind = DEPTHWISE if group > 1 and w[1] == 1 else CONV
            macs = out_elems * int(np.prod(w[1:]))
        else:
            kind = KIND.get(kind_name, ELEMENTWISE)
            if kind == FULLY_CONNECTED:
                macs = out_elems * int(shapes[acts[0]][0][-1]) if acts else 0
            elif kind == POOL:
                macs = int(np.prod(shapes[acts[0]][0])) if acts else out_elems
            elif kind == DATA:
                macs = 0
            else:
                macs = out_elems
        act_bytes = (sum(int(np.prod(shapes[n][0])) for n in acts) + out_elems) * size
        weight_bytes = sum(int(np.prod(shape)) * ITEMSIZE.get(dtype, 4) for shape, dtype in map(constant, weights))
        # NCHW conv: batch x H x W positions; Gemm/MatMul: every dimension but the last
        rows = out_elems // out_shape[1] if kind in (CONV, DEPTHWISE) and len(out_shape) == 4 else \
            out_elems // max(out_shape[-1], 1)
        ops.append(OpCost(kind, kind_name, precision, macs, act_bytes, weight_bytes, rows))
    return ops


def graph_ops(path: Path) -> list[OpCost]:
    """The operator list of a .tflite or .onnx file."""
    if Path(path).suffix == ".onnx":
        return onnx_ops(path)
    from edgekit.estimate.tflite_graph import tflite_ops

    return tflite_ops(path)
