"""ReLU6 fused into the convolution before it: one observer after the clamp, none between.

The XNNPACK quantizer fuses ``conv [+ bn] + relu`` (one observer after the ReLU) but not ``hardtanh`` (ReLU6,
MobileNet's activation): it observes the convolution's output, negatives included, and the clamp shares that
grid. The PT2E graph then holds ``conv -> Q/DQ -> clamp -> Q/DQ``. onnxruntime fuses a convolution into
``QLinearConv`` only when a QuantizeLinear follows it directly, and drops a Clip only when the QuantizeLinear
after it cannot represent anything the Clip would cut, so that graph leaves float ``Clip`` nodes and float
convolutions between Q/DQ pairs (issue 19: 15 of 52 convolutions on the digits student). With the observer
moved after the clamp the range starts at 0 (zero point -128): the clamp's lower bound is the int8 grid's own
floor, onnxruntime folds the Clip away, LiteRT fuses RELU6 into the convolution, and the activation gets
twice the resolution of a grid that also covered the negatives it then discarded.
"""

from __future__ import annotations

import operator

import torch
from torch.fx import GraphModule, Node

KEY = "quantization_annotation"
CLAMPS = {torch.ops.aten.hardtanh.default, torch.ops.aten.hardtanh_.default}
# Producers whose single output may lose its observer to the clamp after it: the convolution or linear
# layer itself, or the batch norm a QAT graph still holds after it (folded into the convolution later).
PRODUCERS = {torch.ops.aten.conv1d.default, torch.ops.aten.conv2d.default, torch.ops.aten.linear.default,
             torch.ops.aten.batch_norm.default, torch.ops.aten._native_batch_norm_legit.default,
             torch.ops.aten._native_batch_norm_legit_no_training.default, torch.ops.aten.cudnn_batch_norm.default}


def _lower_bound(node: Node) -> float:
    if len(node.args) > 1:
        return float(node.args[1])
    return float(node.kwargs.get("min_val", -1.0))


def _producer(node: Node) -> Node | None:
    """The compute node whose output the clamp reads (through a batch norm's ``getitem``), else None."""
    source = node.args[0] if node.args else None
    if not isinstance(source, Node) or source.op != "call_function" or len(source.users) != 1:
        return None
    inner = source.args[0] if source.target is operator.getitem and source.args else source
    if not isinstance(inner, Node) or inner.target not in PRODUCERS:
        return None
    return source


def fuse_clamps(model: GraphModule) -> list[str]:
    """Move the observer of each convolution (or linear) output that only a ``hardtanh(0, ...)`` reads to the
    clamp's output; returns the names of the clamps changed."""
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation, QuantizationSpec

    changed = []
    for node in model.graph.nodes:
        if node.op != "call_function" or node.target not in CLAMPS or _lower_bound(node) != 0.0:
            continue
        producer = _producer(node)
        annotation = producer.meta.get(KEY) if producer is not None else None
        if annotation is None or not isinstance(annotation.output_qspec, QuantizationSpec):
            continue
        node.meta[KEY] = QuantizationAnnotation(input_qspec_map={}, output_qspec=annotation.output_qspec,
                                                _annotated=True)
        annotation.output_qspec = None
        changed.append(node.name)
    return changed


def with_fused_clamps(quantizer):  # noqa: ANN001, ANN201 - torchao's Quantizer is private API
    """``quantizer`` whose annotation is followed by :func:`fuse_clamps`."""
    from edgekit.quantize.annotation_pass import after_annotation

    return after_annotation(quantizer, fuse_clamps)
