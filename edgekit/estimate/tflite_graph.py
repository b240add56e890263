"""Walk a .tflite flatbuffer into the operator list of op_costs.py (no interpreter needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.estimate.op_costs import CONV, DATA, DEPTHWISE, ELEMENTWISE, FULLY_CONNECTED, POOL, OpCost

KIND = {
    "CONV_2D": CONV, "DEPTHWISE_CONV_2D": DEPTHWISE, "FULLY_CONNECTED": FULLY_CONNECTED, "BATCH_MATMUL": FULLY_CONNECTED,
    "AVERAGE_POOL_2D": POOL, "MAX_POOL_2D": POOL, "MEAN": POOL, "SUM": POOL, "REDUCE_MAX": POOL,
    "CONCATENATION": DATA, "TRANSPOSE": DATA, "RESIZE_BILINEAR": DATA, "RESIZE_NEAREST_NEIGHBOR": DATA,
    "STRIDED_SLICE": DATA, "SLICE": DATA, "SPLIT": DATA, "SPLIT_V": DATA, "PACK": DATA, "UNPACK": DATA,
    "GATHER": DATA, "DEPTH_TO_SPACE": DATA, "SPACE_TO_DEPTH": DATA, "TILE": DATA, "BROADCAST_TO": DATA,
}
# Fused into a neighbour or pure metadata under XNNPACK: cost nothing.
FREE = {"RESHAPE", "SQUEEZE", "EXPAND_DIMS", "PAD", "PADV2", "QUANTIZE", "DEQUANTIZE"}
INT8_TYPES = {9, 3}  # INT8, UINT8
ITEMSIZE = {0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 7: 2, 9: 1}


def _op_names() -> dict[int, str]:
    from ai_edge_litert import schema_py_generated as schema

    return {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_") and isinstance(v, int)}


def tflite_ops(path: Path) -> list[OpCost]:
    from ai_edge_litert import schema_py_generated as schema

    data = bytearray(Path(path).read_bytes())
    model = schema.Model.GetRootAs(data, 0)
    names = _op_names()
    codes = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        codes.append(names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM"))
    graph = model.Subgraphs(0)

    def tensor(index: int) -> tuple[np.ndarray, int, bool]:
        t = graph.Tensors(index)
        constant = t.Buffer() != 0 and model.Buffers(t.Buffer()).DataLength() > 0
        return t.ShapeAsNumpy() if t.ShapeLength() else np.array([1]), t.Type(), constant

    ops: list[OpCost] = []
    for j in range(graph.OperatorsLength()):
        op = graph.Operators(j)
        name = codes[op.OpcodeIndex()]
        if name in FREE:
            continue
        inputs = [tensor(i) for i in op.InputsAsNumpy() if i >= 0] if op.InputsLength() else []
        outputs = [tensor(i) for i in op.OutputsAsNumpy() if i >= 0]
        act_in = [(s, t) for s, t, const in inputs if not const]
        weights = [(s, t) for s, t, const in inputs if const]
        data_type = (act_in or inputs)[0][1]
        out_elems = int(np.prod(outputs[0][0]))
        kind = KIND.get(name, ELEMENTWISE)
        if kind == CONV:       # filter [Cout, kH, kW, Cin/groups]
            macs = out_elems * int(np.prod(weights[0][0][1:])) if weights else 0
        elif kind == DEPTHWISE:  # filter [1, kH, kW, Cout]
            macs = out_elems * int(np.prod(weights[0][0][1:3])) if weights else 0
        elif kind == FULLY_CONNECTED:  # out elements x input features
            macs = out_elems * int(act_in[0][0][-1]) if act_in else 0
        elif kind == POOL:
            macs = int(np.prod(act_in[0][0])) if act_in else out_elems
        elif kind == DATA:
            macs = 0
        else:
            macs = out_elems
        act_bytes = sum(int(np.prod(s)) * ITEMSIZE.get(t, 4) for s, t in act_in) + \
            sum(int(np.prod(s)) * ITEMSIZE.get(t, 4) for s, t, _ in outputs)
        weight_bytes = sum(int(np.prod(s)) * ITEMSIZE.get(t, 4) for s, t in weights)
        rows = int(np.prod(outputs[0][0][:-1])) if len(outputs[0][0]) > 1 else 1  # NHWC / [batch, features]
        ops.append(OpCost(kind, name, "int8" if data_type in INT8_TYPES else "fp32", macs, act_bytes, weight_bytes, rows))
    return ops
