"""Reading and writing a .tflite's flatbuffer as the object API's ``ModelT``, for the edits edgekit makes to a
converted file (raw-pixel I/O, int8 edges, metadata)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import flatbuffers


def read_model(path: Path) -> Any:
    from ai_edge_litert import schema_py_generated as schema

    return schema.ModelT.InitFromPackedBuf(bytearray(Path(path).read_bytes()), 0)


def write_model(model: Any, path: Path) -> None:
    """Pack ``model`` and replace the file through a temporary sibling (never a half-written .tflite)."""
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    tmp = Path(path).with_suffix(".tflite.tmp")
    tmp.write_bytes(builder.Output())
    tmp.replace(path)


def move_signature_tensors(model: Any, moved: dict[int, int]) -> None:
    """Point the signatures' inputs and outputs at the tensors that replaced them at the graph's edges."""
    for signature in model.signatureDefs or []:
        for entry in (signature.inputs or []) + (signature.outputs or []):
            entry.tensorIndex = moved.get(entry.tensorIndex, entry.tensorIndex)
