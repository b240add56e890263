"""ExecuTorch ``.pte`` files: the model lowered to the XNNPACK delegate, one image (NCHW float32) in.

FP32 is the student; INT8 is the PT2E INT8 graph with its weights folded (``SOURCE_MODEL`` in formats.py): the
unfolded graph lowers too, but its per-channel weight quantize ops stay outside the delegate and the portable
kernel refuses them at run time ("quantize_per_channel_out scale not double"). The recipe travels inside the
file as a constant method (``edgekit_preprocess`` returns the same JSON an .onnx carries in its metadata), read
with ``executorch.runtime`` and no edgekit code.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgekit.errors import EdgekitError

if TYPE_CHECKING:
    import torch

RECIPE_METHOD = "edgekit_preprocess"
DELEGATE = "XnnpackBackend"


def check_installed() -> None:
    """Before any training: the .pte files need ExecuTorch (an edgekit dependency) to be written and measured."""
    if importlib.util.find_spec("executorch") is None:
        raise EdgekitError("executorch is not installed, and export writes and measures the .pte files with it",
                           "pip install executorch==1.5.1 (an edgekit dependency): reinstall edgekit")


def export_pte(model: torch.nn.Module, example: torch.Tensor, path: Path, metadata: dict[str, Any]) -> None:
    """Lower ``model`` for one input shaped like ``example`` to XNNPACK and write the program to ``path``."""
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    with torch.no_grad():
        program = torch.export.export(model, (example,))
    constants = {RECIPE_METHOD: json.dumps(metadata)} if metadata else None
    lowered = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()], constant_methods=constants)
    buffer = lowered.to_executorch().buffer
    tmp = Path(path).with_suffix(".pte.tmp")
    tmp.write_bytes(buffer)
    os.replace(tmp, path)


def delegates(path: Path) -> list[str]:
    """The backend id of every delegate call in the file's ``forward`` (empty: everything runs on portable ops)."""
    from executorch.exir._serialize._program import deserialize_pte_binary

    program = deserialize_pte_binary(Path(path).read_bytes())
    program = getattr(program, "program", program)
    plan = next(p for p in program.execution_plan if p.name == "forward")
    return [d.id for d in plan.delegates]


def read_recipe(path: Path) -> dict[str, Any] | None:
    """The recipe a .pte carries (``edgekit_preprocess``), or None for a file without it."""
    from executorch.runtime import Runtime

    program = Runtime.get().load_program(Path(path))
    if RECIPE_METHOD not in program.method_names:
        return None
    (text,) = program.load_method(RECIPE_METHOD).execute([])
    return json.loads(text)


def precision(path: Path) -> str:
    """``int8`` when the program computes on quantized tensors, else ``fp32``: read from the file alone.

    The XNNPACK graphs inside a .pte are flatbuffers of their own (executorch's ``schema.fbs``); the ``flatc``
    ExecuTorch ships turns each into JSON, and a quantized tensor value in any of them makes the file INT8. A
    program with no XNNPACK delegate is INT8 when it calls quantize ops. Nothing in the file is executed.
    """
    import subprocess
    import tempfile

    import executorch
    from executorch.backends.xnnpack.serialization.xnnpack_graph_serialize import XNNHeader
    from executorch.exir._serialize._program import _extract_delegate_payload, deserialize_pte_binary

    data = Path(path).read_bytes()
    program = deserialize_pte_binary(data)
    program = getattr(program, "program", program)
    if any("quantize" in op.name for op in program.execution_plan[0].operators):
        return "int8"
    package = Path(list(executorch.__path__)[0])
    flatc, schema = package / "data" / "bin" / "flatc", package / "backends" / "xnnpack" / "serialization" / "schema.fbs"
    index = 0
    while (payload := _extract_delegate_payload(data, "xnnpack", index)) is not None:
        header = XNNHeader.from_bytes(payload[:XNNHeader.EXPECTED_LENGTH])
        graph = payload[header.flatbuffer_offset:header.flatbuffer_offset + header.flatbuffer_size]
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / "graph.bin").write_bytes(graph)
            subprocess.run([str(flatc), "--json", "--strict-json", "--raw-binary", "-o", folder, str(schema), "--",
                            str(Path(folder) / "graph.bin")], check=True, capture_output=True, timeout=60)
            values = json.loads((Path(folder) / "graph.json").read_text(encoding="utf-8")).get("xvalues", [])
        if any(v.get("xvalue_union_type") == "XNNQuantizedTensorValue" for v in values):
            return "int8"
        index += 1
    return "fp32"
