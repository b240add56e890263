"""Walk an .onnx graph (plain FP32 or QDQ INT8) into the operator list of op_costs.py.

An INT8 ONNX file is counted as onnxruntime runs it, not as the INT8 TFLite of the same network. onnxruntime fuses
a node unit ``DequantizeLinear -> Conv/Gemm/MatMul/Add [-> Clip/Relu] -> QuantizeLinear`` into one integer kernel
(QLinearConv, QGemm, QLinearAdd) when every input is dequantized from 8 bits, every consumer of its output is an
8-bit QuantizeLinear, and the Clip or Relu cannot cut anything that quantization keeps (its selectors in
``qdq_selectors.cc``); the Q/DQ nodes of such a unit cost nothing of their own. Any
other Conv/Gemm/MatMul reading DequantizeLinear outputs is a float operator that reads float weights, and every
QuantizeLinear/DequantizeLinear outside a fused unit is a conversion operator of its own. Integer operators
already in the file (QLinearConv, ConvInteger, QLinearMatMul, MatMulInteger) run in INT8.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.estimate.op_costs import CONV, DATA, DEPTHWISE, ELEMENTWISE, FULLY_CONNECTED, POOL, QUANTIZE, OpCost

KIND = {
    "Gemm": FULLY_CONNECTED, "MatMul": FULLY_CONNECTED,
    "QLinearMatMul": FULLY_CONNECTED, "MatMulInteger": FULLY_CONNECTED,
    "AveragePool": POOL, "MaxPool": POOL, "GlobalAveragePool": POOL, "GlobalMaxPool": POOL,
    "ReduceMean": POOL, "ReduceSum": POOL, "ReduceMax": POOL,
    "Concat": DATA, "Transpose": DATA, "Resize": DATA, "Slice": DATA, "Split": DATA, "Pad": DATA,
    "Gather": DATA, "DepthToSpace": DATA, "SpaceToDepth": DATA, "Tile": DATA, "Expand": DATA,
    "QuantizeLinear": QUANTIZE, "DequantizeLinear": QUANTIZE,
}
# Metadata only.
FREE = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Constant", "Shape", "Cast"}
# Integer kernels: the operator itself computes in INT8. Their weight is input 3 (QLinearConv) / input 1.
INTEGER = {"QLinearConv": 3, "ConvInteger": 1, "QLinearMatMul": 3, "MatMulInteger": 1}
CONVOLUTIONS = {"Conv", "QLinearConv", "ConvInteger"}
# Activations fused into the operator that produces their input (as XNNPACK and TFLite do).
FUSABLE_ACTIVATIONS = {"Relu", "Clip"}
FUSES_INTO = {"Conv", "Gemm", "MatMul", "Add", "QLinearConv"}
ITEMSIZE = {1: 4, 2: 1, 3: 1, 6: 4, 7: 8, 10: 2}  # FLOAT, UINT8, INT8, INT32, INT64, FLOAT16
# Operators onnxruntime fuses with the Q/DQ nodes around them into one integer kernel.
QDQ_FUSABLE = {"Conv", "Gemm", "MatMul", "Add"}
EIGHT_BIT = {2, 3}  # UINT8, INT8


def fused_qdq_units(graph) -> tuple[set[str], set[str]]:  # noqa: ANN001 - an onnx.GraphProto
    """The nodes onnxruntime runs as integer kernels (by output name), and the Q/DQ/Clip nodes those absorb."""
    from onnx import numpy_helper

    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    initializers = {t.name: t for t in graph.initializer}

    def zero_point_type(node) -> int | None:  # noqa: ANN001
        zp = initializers.get(node.input[2]) if len(node.input) > 2 else None
        return zp.data_type if zp is not None else 2  # no zero point: uint8

    def value(name: str) -> float | None:
        tensor = initializers.get(name) if name else None
        return float(numpy_helper.to_array(tensor)) if tensor is not None and tensor.dims in ([], [1]) else None

    def redundant_clip(node, q) -> bool:  # noqa: ANN001 - nothing the QuantizeLinear keeps is cut by the Clip/Relu
        scale, zero = value(q.input[1]), value(q.input[2]) if len(q.input) > 2 else 0.0
        if scale is None or zero is None:
            return False
        low_q, high_q = (-128, 127) if zero_point_type(q) == 3 else (0, 255)
        low, high = scale * (low_q - zero), scale * (high_q - zero)
        if node.op_type == "Relu":
            return low >= 0.0
        clip_low = value(node.input[1]) if len(node.input) > 1 else None
        clip_high = value(node.input[2]) if len(node.input) > 2 else None
        slack = 1e-6 * max(abs(low), abs(high), scale)  # the grid's ends in float32, as onnxruntime compares them
        return (clip_low is None or clip_low <= low + slack) and (clip_high is None or clip_high >= high - slack)

    integer, absorbed = set(), set()
    for node in graph.node:
        if node.op_type not in QDQ_FUSABLE or not node.output:
            continue
        dq = [producer.get(name) for name in node.input if name]
        if node.op_type in ("Conv", "Gemm") and len(dq) == 3 and name_is_float_bias(node.input[2], initializers):
            dq = dq[:2]  # onnxruntime quantizes a float bias of a fused unit to int32 itself
        if not dq or any(p is None or p.op_type != "DequantizeLinear" for p in dq):
            continue
        tail, clip = node.output[0], None
        after = consumers.get(tail, [])
        if len(after) == 1 and after[0].op_type in ("Clip", "Relu"):
            clip, after = after[0], consumers.get(after[0].output[0], [])
        if not after or any(c.op_type != "QuantizeLinear" for c in after):
            continue
        # int8 and uint8 alike: on x86 onnxruntime turns int8 activation pairs into uint8 ones before fusing
        if not {zero_point_type(dq[0])} | {zero_point_type(q) for q in after} <= EIGHT_BIT:
            continue
        if clip is not None and not redundant_clip(clip, after[0]):
            continue
        integer.add(node.output[0])
        absorbed.update(p.output[0] for p in dq)
        absorbed.update(q.output[0] for q in after)
        if clip is not None:
            absorbed.add(clip.output[0])
    return integer, absorbed


def name_is_float_bias(name: str, initializers: dict) -> bool:
    tensor = initializers.get(name)
    return tensor is not None and tensor.data_type == 1


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

    def constant(name: str) -> tuple[list[int], int, bool] | None:
        """Shape and element type of the initializer behind a weight input, through any Q/DQ/Transpose, and whether
        a DequantizeLinear turns it into float on the way."""
        node, dequantized = producer.get(name), False
        while node is not None and node.op_type in ("DequantizeLinear", "QuantizeLinear", "Transpose"):
            dequantized |= node.op_type == "DequantizeLinear"
            name, node = node.input[0], producer.get(node.input[0])
        found = constants.get(name)
        return (found[0], found[1], dequantized) if found else None

    def is_constant(name: str) -> bool:
        return constant(name) is not None

    def itemsize(name: str) -> int:
        return ITEMSIZE.get(shapes[name][1], 4) if name in shapes else 4

    fused, absorbed = fused_qdq_units(graph)
    ops: list[OpCost] = []
    for node in graph.node:
        kind_name = node.op_type
        if kind_name in FREE or not node.output or node.output[0] not in shapes or node.output[0] in absorbed:
            continue
        if kind_name in FUSABLE_ACTIVATIONS and node.input[0] in producer \
                and producer[node.input[0]].op_type in FUSES_INTO:
            continue
        out_shape = shapes[node.output[0]][0]
        out_elems = int(np.prod(out_shape))
        if kind_name in ("QuantizeLinear", "DequantizeLinear"):
            # a conversion that runs: elements in at one type, out at the other (an initializer's too)
            source = node.input[0]
            in_bytes = out_elems * (ITEMSIZE.get(constant(source)[1], 4) if is_constant(source) else itemsize(source))
            ops.append(OpCost(QUANTIZE, kind_name, "fp32", 0, in_bytes + out_elems * itemsize(node.output[0]), 0, 1))
            continue
        integer = kind_name in INTEGER or node.output[0] in fused
        precision, size = ("int8", 1) if integer else ("fp32", 4)
        acts = [n for n in node.input if n and not is_constant(n) and n in shapes]
        weights = [n for n in node.input if n and is_constant(n)]
        if kind_name in CONVOLUTIONS:
            w = (constant(node.input[INTEGER.get(kind_name, 1)]) or ([1, 1, 1, 1], 1, False))[0]
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
        # a float operator reads float weights, also when a DequantizeLinear makes them from int8 at each run
        weight_bytes = sum(int(np.prod(shape)) * (4 if dequantized and not integer else ITEMSIZE.get(dtype, 4))
                           for shape, dtype, dequantized in map(constant, weights))
        # NCHW conv: batch x H x W positions; Gemm/MatMul: every dimension but the last; a scalar: one
        rows = out_elems // out_shape[1] if kind in (CONV, DEPTHWISE) and len(out_shape) == 4 else \
            out_elems // max(out_shape[-1], 1) if out_shape else 1
        ops.append(OpCost(kind, kind_name, precision, macs, act_bytes, weight_bytes, rows))
    return ops


GRAPH_FORMATS = ("onnx", "tflite")  # the formats whose operators are walked here (not ExecuTorch's .pte)


def graph_ops(path: Path) -> list[OpCost]:
    """The operator list of a .tflite or .onnx file."""
    if Path(path).suffix == ".onnx":
        return onnx_ops(path)
    from edgekit.estimate.tflite_graph import tflite_ops

    return tflite_ops(path)
