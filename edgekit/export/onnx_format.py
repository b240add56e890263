"""ONNX export: one self-contained file (no .onnx.data), dynamic batch, preprocessing in metadata_props."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import onnx
import torch
from torch.export import Dim

from edgekit.export.quiet import quiet_fds

OPSET = 21
INPUT_NAME = "image"
OUTPUT_NAME = "logits"


def export_onnx(model: torch.nn.Module, example: torch.Tensor, path: Path, metadata: dict[str, Any],
                output_names: list[str] | None = None) -> None:
    """Export ``model`` (FP32 module or PT2E int8 graph with folded weights) and embed ``metadata``."""
    batch = Dim("batch", min=1, max=4096)
    with quiet_fds():
        program = torch.onnx.export(model, (example,), dynamo=True, opset_version=OPSET, external_data=False,
                                    input_names=[INPUT_NAME], output_names=output_names or [OUTPUT_NAME],
                                    dynamic_shapes=({0: batch},), verbose=False)
    proto = program.model_proto
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key = key
        entry.value = value if isinstance(value, str) else json.dumps(value)
    onnx.checker.check_model(proto)
    onnx.save_model(proto, str(path), save_as_external_data=False)
