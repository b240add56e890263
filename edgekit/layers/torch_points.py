"""Where each quantized layer's output is, in the PT2E INT8 graph and in the FP32 student's exported graph.

A *layer* is a conv or linear node of the converted PT2E graph, named by its module path (``nn_module_stack``).
Its output point is where the INT8 files hold it: after the activations fused with it (ReLU/ReLU6), at the
``quantize_per_tensor`` that follows. The FP32 student's point is the same module's conv/linear node followed by
its batch norm and the same activations. The int8 weights (in PyTorch's OIHW layout) identify the layer in the
exported files, whose tensor names do not carry module paths (LiteRT's are wrapper names).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from edgekit.quantize.keep_float import QUANTIZE, QUANTIZE_WEIGHT, is_integer, module_path

COMPUTE = {"aten.conv2d.default": "conv", "aten.linear.default": "linear"}
ACTIVATIONS = {"aten.hardtanh.default", "aten.hardtanh_.default", "aten.relu.default", "aten.relu_.default",
               "aten.relu6.default", "aten.clamp.default"}
BATCH_NORMS = {"aten.batch_norm.default", "aten._native_batch_norm_legit_no_training.default"}


@dataclass
class Layer:
    """One quantized layer: its module path, what it is, its int8 weights and where its output is read."""

    path: str
    kind: str  # conv | depthwise | linear
    int8_weight: np.ndarray  # OIHW (conv) or (out, in) (linear)
    activations: list[str]  # aten targets fused after it, in order
    int8_node: str  # the quantize_per_tensor node holding its output in the INT8 graph
    scale: float
    zero_point: int
    fp32_node: str = ""  # the last node of its chain in the FP32 graph
    fp32_weight: np.ndarray | None = None  # the FP32 student's weight (finds the layer in FP32 files)
    upstream: list[str] = field(default_factory=list)  # the layers whose outputs reach its input (none: the image)


def _single_user(node: torch.fx.Node) -> torch.fx.Node | None:
    users = list(node.users)
    return users[0] if len(users) == 1 else None


def _int8_weight(node: torch.fx.Node, module: torch.nn.Module) -> np.ndarray:
    """The int8 values of a conv/linear weight: its dequantize's quantize_per_channel, evaluated."""
    dequant = node.args[1]
    quant = dequant.args[0]
    if str(quant.target) != QUANTIZE_WEIGHT:  # already folded into an int8 constant
        return _attr(module, quant.target).detach().numpy()
    args = [(_attr(module, a.target) if isinstance(a, torch.fx.Node) else a) for a in quant.args]
    return quant.target(*args).detach().numpy()


def _attr(module: torch.nn.Module, name: str) -> torch.Tensor:
    value: Any = module
    for part in str(name).split("."):
        value = getattr(value, part)
    return value


def int8_layers(converted: torch.nn.Module) -> list[Layer]:
    """The quantized conv/linear layers of a converted PT2E graph, in execution order."""
    layers: list[Layer] = []
    for node in converted.graph.nodes:
        kind = COMPUTE.get(str(node.target)) if node.op == "call_function" else None
        if kind is None or not is_integer(node):
            continue  # not a layer, or one kept float or reading one's float output (quantize/keep_float.py)
        weight = _int8_weight(node, converted)
        if kind == "conv" and len(node.args) > 6 and node.args[6] != 1 and node.args[6] == weight.shape[0]:
            kind = "depthwise"
        chain, point = [], node
        while (nxt := _single_user(point)) is not None and str(nxt.target) in ACTIVATIONS:
            chain.append(str(nxt.target))
            point = nxt
        quant = next((u for u in point.users if str(u.target) == QUANTIZE), None)
        if quant is None:  # a float layer (kept wider): nothing quantized to compare
            continue
        layers.append(Layer(module_path(node), kind, weight, chain, quant.name,
                            float(quant.args[1]), int(quant.args[2])))
        layers[-1].upstream = _upstream(node.args[0], {lay.int8_node: lay.path for lay in layers[:-1]})
    return layers


def _upstream(start: torch.fx.Node, outputs: dict[str, str]) -> list[str]:
    """The layers whose output nodes are reached walking back from ``start`` (stopping at each one found)."""
    found, seen, todo = [], set(), [start]
    while todo:
        node = todo.pop()
        if not isinstance(node, torch.fx.Node) or node.name in seen:
            continue
        seen.add(node.name)
        if node.name in outputs:
            found.append(outputs[node.name])
            continue
        todo.extend(a for a in node.all_input_nodes if a.op != "get_attr")
    return sorted(set(found))


def attach_fp32_points(fp32_graph: torch.nn.Module, layers: list[Layer]) -> None:
    """Set each layer's ``fp32_node``: its module's conv/linear node, then batch norm and the same activations."""
    compute = {module_path(n): n for n in fp32_graph.graph.nodes
               if n.op == "call_function" and str(n.target) in COMPUTE}
    for layer in layers:
        point = compute[layer.path]
        nxt = _single_user(point)
        if nxt is not None and str(nxt.target) in BATCH_NORMS:
            point = nxt
        for _ in layer.activations:
            nxt = _single_user(point)
            if nxt is None or str(nxt.target) not in ACTIVATIONS:
                break
            point = nxt
        layer.fp32_node = point.name
        layer.fp32_weight = _attr(fp32_graph, compute[layer.path].args[1].target).detach().numpy()


class _Recorder(torch.fx.Interpreter):
    def __init__(self, module: torch.nn.Module, names: set[str]) -> None:
        super().__init__(module)
        self.names, self.seen = names, {}

    def run_node(self, n: torch.fx.Node) -> Any:
        value = super().run_node(n)
        if n.name in self.names:
            self.seen[n.name] = value.detach().clone()
        return value


@torch.no_grad()
def capture(module: torch.nn.Module, names: list[str], x: torch.Tensor) -> dict[str, np.ndarray]:
    """The values of the named nodes for a batch, as the graph holds them (NCHW)."""
    recorder = _Recorder(module, set(names))
    recorder.run(x)
    return {name: recorder.seen[name].numpy() for name in names}


class _Replayer(torch.fx.Interpreter):
    """The FP32 graph with each layer's output replaced by a file's value for it once computed: what each layer
    makes of the file's own inputs to it is recorded just before the replacement."""

    def __init__(self, module: torch.nn.Module, points: dict[str, str], values: dict[str, np.ndarray]) -> None:
        super().__init__(module)
        self.points, self.values, self.seen = points, values, {}

    def run_node(self, n: torch.fx.Node) -> Any:
        value = super().run_node(n)
        path = self.points.get(n.name)
        if path is None:
            return value
        self.seen[path] = value.detach().float().numpy().copy()
        # a copy: the graph's in-place ops after this point (hardswish_, add_) would otherwise write into the
        # file's values, which the report then compares
        return torch.tensor(self.values[path], dtype=value.dtype).reshape(value.shape)


@torch.no_grad()
def own_references(fp32_graph: torch.nn.Module, layers: list[Layer], values: dict[str, np.ndarray],
                   x: torch.Tensor) -> dict[str, np.ndarray]:
    """Each layer's FP32 output computed from a file's own outputs of the layers before it (one pass): set against
    the file's output of the layer, it is the error that layer adds itself, whatever came in."""
    replayer = _Replayer(fp32_graph, {layer.fp32_node: layer.path for layer in layers}, values)
    replayer.run(x)
    return replayer.seen


def int8_outputs(converted: torch.nn.Module, layers: list[Layer], x: torch.Tensor) -> dict[str, np.ndarray]:
    """Each layer's output in the PT2E INT8 graph, dequantized: module path -> float32 array."""
    raw = capture(converted, [layer.int8_node for layer in layers], x)
    return {layer.path: (raw[layer.int8_node].astype(np.float32) - layer.zero_point) * layer.scale for layer in layers}


def fp32_outputs(fp32_graph: torch.nn.Module, layers: list[Layer], x: torch.Tensor) -> dict[str, np.ndarray]:
    """Each layer's output in the FP32 student's exported graph: module path -> float32 array."""
    raw = capture(fp32_graph, [layer.fp32_node for layer in layers], x)
    return {layer.path: raw[layer.fp32_node].astype(np.float32) for layer in layers}
