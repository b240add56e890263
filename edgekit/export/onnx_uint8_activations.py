"""INT8 ONNX activations stored as uint8: the form onnxruntime's CPU kernels fuse whole.

The PT2E graph quantizes activations to int8. onnxruntime's x86 integer convolutions take uint8
activations (U8S8), so its optimizer wraps int8 activation Q/DQ pairs in conversion nodes; on the digits
student that left 15 of 52 convolutions and all 10 residual additions running in float between
QuantizeLinear/DequantizeLinear pairs, behind 32 transposes, in a plain ``InferenceSession(path)``. An
int8 activation and a uint8 one with the zero point moved by 128 hold the same real numbers on the same
grid (``scale * (q - zp)``), so rewriting the file this way is exact: the session then fuses every
convolution into ``QLinearConv`` and every addition into ``QLinearAdd``, with one QuantizeLinear at the
input and one DequantizeLinear at the output. Weights stay int8, symmetric per channel.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

QDQ = ("QuantizeLinear", "DequantizeLinear")


def uint8_activations(model: onnx.ModelProto) -> int:
    """Move every activation QuantizeLinear/DequantizeLinear from int8 to uint8 (zero point + 128), in place;
    returns how many nodes changed. Weights (a DequantizeLinear reading an initializer) are left alone."""
    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    changed = 0
    for node in graph.node:
        if node.op_type not in QDQ or len(node.input) < 3:
            continue
        zero_point = initializers.get(node.input[2])
        if zero_point is None or zero_point.data_type != TensorProto.INT8:
            continue
        if node.op_type == "DequantizeLinear" and node.input[0] in initializers:
            continue  # a weight
        if readers[zero_point.name] != 1:
            raise ValueError(f"zero point {zero_point.name} is shared between nodes; give each node its own")
        shifted = numpy_helper.to_array(zero_point).astype(np.int16) + 128
        zero_point.CopyFrom(numpy_helper.from_array(shifted.astype(np.uint8), zero_point.name))
        changed += 1
    del graph.value_info[:]  # the intermediate types changed; shape inference writes them again
    inferred = onnx.shape_inference.infer_shapes(model)
    graph.value_info.extend(inferred.graph.value_info)
    return changed
