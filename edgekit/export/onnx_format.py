"""ONNX export: one self-contained file (no .onnx.data), dynamic batch, preprocessing in metadata_props."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import onnx
import torch
from torch.export import Dim

from edgekit.export.onnx_uint8_activations import uint8_activations
from edgekit.runtime.quiet import quiet_fds

OPSET = 21
INPUT_NAME = "image"
OUTPUT_NAME = "logits"


def export_onnx(model: torch.nn.Module, example: torch.Tensor, path: Path, metadata: dict[str, Any],
                output_names: list[str] | None = None, int8: bool = False) -> None:
    """Export ``model`` (FP32 module or PT2E int8 graph with folded weights) and embed ``metadata``; an int8
    graph's activations are stored as uint8 (onnx_uint8_activations.py)."""
    batch = Dim("batch", min=1, max=4096)
    with quiet_fds():
        program = torch.onnx.export(model, (example,), dynamo=True, opset_version=OPSET, external_data=False,
                                    input_names=[INPUT_NAME], output_names=output_names or [OUTPUT_NAME],
                                    dynamic_shapes=({0: batch},), verbose=False)
    proto = program.model_proto
    without_trace_metadata(proto.graph)
    own_int8_initializers(proto.graph)
    if int8:
        uint8_activations(proto)
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key = key
        entry.value = value if isinstance(value, str) else json.dumps(value)
    onnx.checker.check_model(proto)
    onnx.save_model(proto, str(path), save_as_external_data=False)


def without_trace_metadata(graph: onnx.GraphProto) -> int:
    """Drop each node's ``metadata_props`` (the exporter's module stack and source trace of that node); returns the
    bytes saved. They are debugging aids for the exporter's users, not for an app: in the digits student's INT8
    file they were 387 KiB of its 892 KiB. The model's own metadata_props (the recipe) stay."""
    saved = 0
    for node in graph.node:
        if node.metadata_props:
            saved += sum(entry.ByteSize() for entry in node.metadata_props)
            del node.metadata_props[:]
    return saved


def own_int8_initializers(graph: onnx.GraphProto) -> int:
    """Give every node its own copy of each int8 initializer it shares with an earlier node; returns the copies made.

    The exporter shares equal constants, such as a zero-point vector that several weights' DequantizeLinear
    nodes read. onnxruntime's precise integer path on x86 (``session.x64quantprecision``, which
    edgekit/runtime/ort_session.py explains) rewrites each fused convolution's int8 weight and zero point to
    uint8 under one derived name, and fails to load the file ("Attempt to replace the existing tensor")
    when a second convolution holds the same initializer. Copies cost a few bytes per channel.
    """
    initializers = {t.name: t for t in graph.initializer if t.data_type == onnx.TensorProto.INT8}
    taken = {t.name for t in graph.initializer}
    seen: set[str] = set()
    copies = 0
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name not in initializers:
                continue
            if name in seen:
                copy = onnx.TensorProto()
                copy.CopyFrom(initializers[name])
                copy.name = _free_name(f"{name}_copy", taken)
                graph.initializer.append(copy)
                node.input[i] = copy.name
                copies += 1
            seen.add(name)
    return copies


def _free_name(stem: str, taken: set[str]) -> str:
    k = 1
    while f"{stem}{k}" in taken:
        k += 1
    taken.add(f"{stem}{k}")
    return f"{stem}{k}"
