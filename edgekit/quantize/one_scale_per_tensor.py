"""One int8 scale per tensor at the input of every convolution and linear layer.

The XNNPACK quantizer gives a linear layer's input an observer of its own even when the tensor is
already on another one's grid: the classifier's ``linear`` reads ReLU6, average pool, flatten and
dropout of the last convolution's output, which is quantized at the convolution's qparams, so the
PT2E graph holds a requantization there (dequantize with the convolution's scale, quantize again
with the linear's). LiteRT's converter
drops that requantization: the ``FULLY_CONNECTED`` kernel reads the tensor at the first scale, but
its int32 bias is stored in steps of the *second* scale times the weight scale, so every logit gets
its bias times their ratio (4.8 on the CIFAR-10 budget student: agreement with the PT2E graph 83 %,
2.4 points lost; onnxruntime keeps the requantization and agreed 96 %). See
``benchmarks/results/ptq_tflite_layers.md``.

Sharing the producer's qparams at such an input removes the requantization from the graph itself,
so the PyTorch INT8 graph, the ONNX file and the TFLite file compute the same thing. The tensor is
already on the producer's grid, so the second scale never added precision; it only clipped.
"""

from __future__ import annotations

import torch
from torch.fx import GraphModule, Node

# The operators whose int32 bias is stored in steps of input scale x weight scale.
BIASED = {
    torch.ops.aten.linear.default,
    torch.ops.aten.conv1d.default,
    torch.ops.aten.conv2d.default,
    torch.ops.aten.conv_transpose2d.input,
}
KEY = "quantization_annotation"


# Operators LiteRT runs on the int8 grid of their input (no qparams of their own in the PT2E graph).
PASS_THROUGH = {
    torch.ops.aten.hardtanh.default, torch.ops.aten.hardtanh_.default, torch.ops.aten.relu.default,
    torch.ops.aten.relu_.default, torch.ops.aten.adaptive_avg_pool2d.default, torch.ops.aten.avg_pool2d.default,
    torch.ops.aten.mean.dim, torch.ops.aten.max_pool2d.default, torch.ops.aten.flatten.using_ints,
    torch.ops.aten.view.default, torch.ops.aten.reshape.default, torch.ops.aten.dropout.default,
    torch.ops.aten.squeeze.dims, torch.ops.aten.clone.default,
}


def observed_source(node: Node) -> Node | None:
    """The nearest node up the chain of pass-through operators whose output has qparams, if any."""
    while isinstance(node, Node):
        annotation = node.meta.get(KEY)
        if annotation is not None and annotation.output_qspec is not None:
            return node
        if node.op != "call_function" or node.target not in PASS_THROUGH or not node.args:
            return None
        node = node.args[0]
    return None


def share_producer_scale(model: GraphModule) -> list[str]:
    """Make each biased operator's activation input share the qparams of the tensor it comes from
    (through pass-through operators); returns the names of the operators changed."""
    from torchao.quantization.pt2e.quantizer import SharedQuantizationSpec

    changed = []
    for node in model.graph.nodes:
        annotation = node.meta.get(KEY)
        if node.op != "call_function" or node.target not in BIASED or annotation is None or not node.args:
            continue
        activation = node.args[0]
        source = observed_source(activation)
        wanted = annotation.input_qspec_map.get(activation)
        if source is None or wanted is None or (source is activation and wanted == source.meta[KEY].output_qspec):
            continue  # nothing observed up the chain, or one observer is already shared
        annotation.input_qspec_map[activation] = SharedQuantizationSpec(source)
        changed.append(node.name)
    return changed


def without_requantization(quantizer):  # noqa: ANN001, ANN201 - torchao's Quantizer is private API
    """``quantizer`` whose annotation is followed by :func:`share_producer_scale`."""
    from edgekit.quantize.annotation_pass import after_annotation

    return after_annotation(quantizer, share_producer_scale)
