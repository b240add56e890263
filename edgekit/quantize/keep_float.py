"""Layers kept in float inside an INT8 graph: the accuracy goal's fallback (issue 21).

A layer kept float reads its float weight (trained, batch norm folded) instead of ``dequantize(quantize(weight))``,
and its output (after the activations fused with it) is no longer quantized: the layers that read it take it in
float, so neither the layer's weights nor its output grid cost precision. The per-layer report's *own SQNR* of a
layer measures exactly those two errors, which is why it ranks the candidates. A layer that reads a float input
computes in float too, with its float weights (ExecuTorch has no kernel for a float convolution over dequantized
int8 weights outside its XNNPACK delegate, which does not take one), and its own output is quantized as before, so
every layer beyond stays integer. LiteRT's converter quantizes float weights between Q/DQ again unless it runs in strict
QDQ mode (export/tflite_strict_qdq.py); onnxruntime runs float nodes as they are.

16-bit activations were tried as the wider form first: LiteRT's converter drops the int8 -> int16 requantization
between Q/DQ pairs and writes a file whose CONV_2D reads int8 and writes int16, which LiteRT refuses to run.
"""

from __future__ import annotations

import copy

import torch

COMPUTE = {"aten.conv2d.default", "aten.linear.default"}
DEQUANTIZE_WEIGHT = "quantized_decomposed.dequantize_per_channel.default"
QUANTIZE_WEIGHT = "quantized_decomposed.quantize_per_channel.default"
QUANTIZE = "quantized_decomposed.quantize_per_tensor.default"
DEQUANTIZE = "quantized_decomposed.dequantize_per_tensor.default"
# what a layer's output passes through before its quantize: batch norm (a QAT graph's), the fused activations
FUSED = {"aten.batch_norm.default", "aten._native_batch_norm_legit_no_training.default", "<built-in function getitem>",
         "aten.relu.default", "aten.relu_.default", "aten.hardtanh.default", "aten.hardtanh_.default",
         "aten.relu6.default", "aten.clamp.default"}


def module_path(node: torch.fx.Node) -> str:
    """The module a node of an exported graph was traced from (``nn_module_stack``), "" at the top."""
    stack = node.meta.get("nn_module_stack") or {}
    return list(stack.values())[-1][0] if stack else ""


def _compute_nodes(graph_module: torch.nn.Module) -> list[torch.fx.Node]:
    return [n for n in graph_module.graph.nodes if n.op == "call_function" and str(n.target) in COMPUTE]


def _float_weight(node: torch.fx.Node) -> torch.fx.Node | None:
    """The float weight under a layer's weight dequantize (None when the weight is already float or folded)."""
    dequant = node.args[1]
    if not isinstance(dequant, torch.fx.Node) or str(dequant.target) != DEQUANTIZE_WEIGHT:
        return None
    quant = dequant.args[0]
    if not isinstance(quant, torch.fx.Node) or str(quant.target) != QUANTIZE_WEIGHT:
        return None  # folded into an int8 constant: no float weight left to use
    return quant.args[0]


def _output_quantize(node: torch.fx.Node) -> tuple[torch.fx.Node, torch.fx.Node] | None:
    """(the last node of the layer's chain, the quantize of its output), if the output is quantized."""
    point = node
    while len(point.users) == 1 and str(next(iter(point.users)).target) in FUSED:
        point = next(iter(point.users))
    quant = next((u for u in point.users if str(u.target) == QUANTIZE), None)
    return (point, quant) if quant is not None else None


def is_integer(node: torch.fx.Node) -> bool:
    """A conv/linear node that runs integer: quantized weights and a dequantized (int8) input."""
    return (str(getattr(node.args[1], "target", "")) == DEQUANTIZE_WEIGHT
            and str(getattr(node.args[0], "target", "")) == DEQUANTIZE)


def keep_float(converted: torch.nn.Module, paths: list[str]) -> torch.nn.Module:
    """A copy of a converted (``fold_quantize=False``) graph whose named layers run in float, with float outputs."""
    wanted = set(paths)
    graph_module = copy.deepcopy(converted)
    found = set()
    for node in _compute_nodes(graph_module):
        path = module_path(node)
        weight = _float_weight(node) if path in wanted else None
        if weight is None:
            continue
        node.replace_input_with(node.args[1], weight)
        output = _output_quantize(node)
        if output is not None:  # its readers take the float value instead of its int8 round trip
            point, quant = output
            for dequant in [u for u in quant.users if str(u.target) == DEQUANTIZE]:
                dequant.replace_all_uses_with(point)
        found.add(path)
    missing = wanted - found
    if missing:
        raise ValueError(f"no quantized layer at {sorted(missing)}")
    for node in _compute_nodes(graph_module):  # the layers now reading a float input
        weight = _float_weight(node)
        if weight is not None and not is_integer(node):
            node.replace_input_with(node.args[1], weight)
    graph_module.graph.eliminate_dead_code()
    graph_module.recompile()
    graph_module.training = False
    return graph_module
