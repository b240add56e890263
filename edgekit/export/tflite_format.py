"""TFLite export through litert-torch: NHWC input for apps, full-integer INT8 from a PT2E graph.

The preprocessing JSON goes into the flatbuffer's ``metadata`` table (name ``edgekit.preprocess``),
read back with any flatbuffer reader; labels.txt and preprocess.json also sit beside the file.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

from edgekit.export.tflite_flatbuffer import read_model, write_model
from edgekit.export.tflite_strict_qdq import int8_edges, strict_qdq
from edgekit.runtime.quiet import quiet_fds

METADATA_NAME = "edgekit.preprocess"


def _int8_quant_config():  # noqa: ANN202 - litert-torch types
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
    from litert_torch.quantize.quant_config import QuantConfig

    return QuantConfig(pt2e_quantizer=PT2EQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True)))


def export_tflite(model: torch.nn.Module, example_nchw: torch.Tensor, path: Path, *, int8: bool,
                  float_layers: bool = False) -> None:
    """``model`` takes NCHW; the file takes NHWC (``to_channel_last_io``). ``int8``: a fold_quantize=False graph;
    ``float_layers``: it has layers kept float (quantize/keep_float.py), which stay float in the file
    (tflite_strict_qdq.py)."""
    mixed = int8 and float_layers
    with quiet_fds():  # importing the converter logs TensorFlow start-up lines
        import litert_torch

        nhwc = litert_torch.to_channel_last_io(model, args=[0])
        example = example_nchw.permute(0, 2, 3, 1).contiguous()
        with strict_qdq() if mixed else contextlib.nullcontext():
            converted = litert_torch.convert(nhwc, (example,), quant_config=_int8_quant_config() if int8 else None)
        converted.export(str(path))
    if mixed:
        int8_edges(path)


def embed_metadata(path: Path, name: str, payload: bytes) -> None:
    """Append a named metadata buffer to a .tflite file (rewritten in place through a temporary file)."""
    from ai_edge_litert import schema_py_generated as schema

    model = read_model(path)
    buffer = schema.BufferT()
    buffer.data = list(payload)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = name
    entry.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if m.name != name] + [entry]
    write_model(model, path)


def read_metadata(path: Path, name: str) -> bytes | None:
    model = read_model(path)
    for entry in model.metadata or []:
        if (entry.name.decode() if isinstance(entry.name, bytes) else entry.name) == name:
            return bytes(bytearray(model.buffers[entry.buffer].data))
    return None
