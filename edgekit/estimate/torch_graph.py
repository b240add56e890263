"""Walk an untrained PyTorch network into the operator list of op_costs.py, before any training or conversion.

The target-driven student choice estimates every candidate's INT8 latency from this list; it must match what
tflite_graph.py later reads from the candidate's own INT8 .tflite, so the walk follows the converter: BatchNorm
and ReLU/ReLU6 fold into the convolution before them, reshapes and dropout cost nothing, residual adds,
hard-swish, sigmoid and multiplications run as elementwise operators, pooling and means as pools. Shapes come
from ``torch.export``, or for another input size from running the traced graph once; any weights do.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from edgekit.estimate.op_costs import CONV, DATA, DEPTHWISE, ELEMENTWISE, FULLY_CONNECTED, POOL, OpCost

# aten operator names (without overload) -> what they become once converted
CONVOLUTIONS = {"conv2d", "convolution", "_convolution"}
LINEAR = {"linear", "addmm", "mm", "matmul"}
POOLS = {"adaptive_avg_pool2d", "avg_pool2d", "max_pool2d", "mean", "max_pool2d_with_indices", "sum"}
MOVES = {"cat", "concat", "permute", "transpose", "upsample_nearest2d", "upsample_bilinear2d", "slice", "split",
         "split_with_sizes", "chunk", "pixel_shuffle", "stack"}
# fused into the convolution before them (ReLU, ReLU6 = hardtanh(0, 6), BatchNorm), or free (shape only)
FOLDED = {"relu", "relu_", "relu6", "hardtanh", "hardtanh_", "batch_norm", "_native_batch_norm_legit_no_training",
          "native_batch_norm"}
FREE = {"view", "reshape", "flatten", "squeeze", "unsqueeze", "dropout", "dropout_", "clone", "contiguous",
        "alias", "detach", "_assert_tensor_metadata", "t", "expand", "size", "sym_size", "getitem", "to",
        "_to_copy", "identity", "feature_dropout", "native_dropout"}
# everything else (add, mul, hard-swish, sigmoid, ...) is an elementwise operator


def _name(node: torch.fx.Node) -> str:
    target = node.target
    name = getattr(target, "__name__", str(target))
    return name.split(".")[0]


def _shape(value: Any) -> list[int]:
    return [int(d) for d in value.shape] if hasattr(value, "shape") else []


def _elems(shape: list[int]) -> int:
    return math.prod(shape) if shape else 1


def torch_ops(model: torch.nn.Module, example: torch.Tensor, precision: str = "int8") -> list[OpCost]:
    """The operator list ``model`` will have as a ``precision`` TFLite file for inputs shaped like ``example``.

    Unknown operators are counted as elementwise (one MAC an output element), as the file walkers count them.
    """
    return program_ops(export_program(model, example), precision)


def export_program(model: torch.nn.Module, example: torch.Tensor) -> torch.export.ExportedProgram:
    with torch.no_grad():
        return torch.export.export(model.eval(), (example,))


def _lifted_values(program: torch.export.ExportedProgram, x: torch.Tensor) -> list[Any]:
    """The graph module's flat inputs: parameters, buffers and constants where the signature lifted them, and x."""
    from torch.export.graph_signature import InputKind

    values = []
    for spec in program.graph_signature.input_specs:
        if spec.kind == InputKind.USER_INPUT:
            values.append(x)
        else:
            values.append(program.state_dict[spec.target] if spec.target in program.state_dict
                          else program.constants[spec.target])
    return values


class _ShapeRecorder(torch.fx.Interpreter):
    """Runs the traced graph on another input size and keeps every node's output shape."""

    def __init__(self, module: torch.fx.GraphModule) -> None:
        super().__init__(module)
        self.shapes: dict[str, list[int]] = {}

    def run_node(self, n: torch.fx.Node) -> Any:
        result = super().run_node(n)
        first = result[0] if isinstance(result, (tuple, list)) and result else result
        self.shapes[n.name] = _shape(first)
        return result


def program_ops(program: torch.export.ExportedProgram, precision: str = "int8",
                example: torch.Tensor | None = None) -> list[OpCost]:
    """The operator list of a traced network, at the traced input size or at ``example``'s (one trace serves every
    input size of a candidate: running the graph again costs a fraction of tracing it)."""
    size = 1 if precision == "int8" else 4
    graph, signature = program.graph, program.graph_signature
    if example is None:
        shapes = {n.name: _shape(n.meta["val"][0] if isinstance(n.meta.get("val"), (tuple, list)) else n.meta.get("val"))
                  for n in graph.nodes if "val" in n.meta}
    else:
        recorder = _ShapeRecorder(program.graph_module)
        with torch.no_grad():
            recorder.run(*_lifted_values(program, example))
        shapes = recorder.shapes
    # torch.export lifts parameters and buffers to inputs: those are weights, the other inputs activations
    lifted = set(signature.inputs_to_parameters) | set(signature.inputs_to_buffers)
    ops: list[OpCost] = []
    for node in graph.nodes:
        if node.op != "call_function":
            continue
        name = _name(node)
        out_shape = shapes.get(node.name, [])
        if name in FREE or name in FOLDED or not out_shape:
            continue
        inputs = [a for a in node.args if isinstance(a, torch.fx.Node)]
        act_in = [shapes[a.name] for a in inputs if a.name not in lifted and a.name in shapes]
        params = [shapes[a.name] for a in inputs if a.name in lifted and a.name in shapes]
        out_elems = _elems(out_shape)
        if name in CONVOLUTIONS:
            w = params[0] if params else [1, 1, 1, 1]
            groups = int(node.args[-1]) if name == "conv2d" and len(node.args) >= 7 else int(node.kwargs.get("groups", 1))
            kind = DEPTHWISE if groups > 1 and w[1] == 1 else CONV
            macs = out_elems * _elems(w[1:])
            cout = w[0]
            weight_bytes = _elems(w) * size + cout * 4  # int32 (or float) bias: BatchNorm folding always makes one
            # aten.conv2d(input, weight, bias, stride, padding, dilation, groups): trailing defaults may be left out
            stride = list(node.args[3]) if name == "conv2d" and len(node.args) > 3 else [1]
            padding = list(node.args[4]) if name == "conv2d" and len(node.args) > 4 else [0]
            if act_in and max(stride) > 1 and max(padding) > 0:
                # TFLite's SAME padding is not PyTorch's symmetric one at stride 2: the converter writes a PAD and
                # the convolution reads the padded map
                n, c, h, w_ = act_in[0]
                act_in[0] = [n, c, h + 2 * padding[0], w_ + 2 * padding[-1]]
        elif name in LINEAR:
            w = params[0] if params else [out_shape[-1], act_in[0][-1] if act_in else 1]
            kind, macs = FULLY_CONNECTED, out_elems * w[-1]
            weight_bytes = _elems(w) * size + out_shape[-1] * 4
        else:
            kind = POOL if name in POOLS else DATA if name in MOVES else ELEMENTWISE
            macs = (_elems(act_in[0]) if act_in else out_elems) if kind == POOL else 0 if kind == DATA else out_elems
            weight_bytes = sum(_elems(p) * size for p in params)
            if name == "mean" and len(node.args) > 1:
                weight_bytes += 4 * len(node.args[1])  # the axes, an int32 constant in the file
            elif name == "adaptive_avg_pool2d" and _elems(out_shape[2:]) == 1:
                weight_bytes += 8  # a global average pool converts to MEAN over the two spatial axes
        act_bytes = (sum(_elems(s) for s in act_in) + out_elems) * size
        # output positions: batch x H x W of an NCHW map, every dimension but the last of a matrix
        rows = out_elems // max(out_shape[1] if len(out_shape) == 4 else out_shape[-1], 1)
        ops.append(OpCost(kind, name.upper(), precision, macs, act_bytes, weight_bytes, rows))
    return ops

