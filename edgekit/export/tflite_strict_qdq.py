"""LiteRT conversion of an INT8 graph with layers kept float: strict QDQ mode, and int8 edges as usual.

In its default QDQ mode LiteRT's converter quantizes every operator between a DEQUANTIZE and a QUANTIZE,
float weights included (it computes their scales itself), so a layer kept float (quantize/keep_float.py)
would come back int8. Strict mode quantizes only operators whose every operand is dequantized and leaves the
others float. litert-torch 0.10 sets its converter options itself and does not expose that one, so
``strict_qdq`` sets it on the options object while a conversion runs.

Strict mode also gives the file a float input with a QUANTIZE behind it and a float output after a
DEQUANTIZE, where the default mode makes the int8 tensors the graph's edges. ``int8_edges`` moves the edges
back onto the int8 tensors, so the file has the same int8 interface as a fully integer one (and
tflite_raw_pixels.py can turn it into uint8 pixels in, as for any INT8 file).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgekit.export.tflite_flatbuffer import move_signature_tensors, read_model, write_model


@contextlib.contextmanager
def strict_qdq() -> Iterator[None]:
    from litert_torch._convert import litert_converter

    api = litert_converter.converter_api_ext
    original = api.ConvertToTFLConfig

    def strict_config():  # noqa: ANN202 - the converter's own options type
        config = original()
        config.strict_qdq_mode = True
        return config

    api.ConvertToTFLConfig = strict_config
    try:
        yield
    finally:
        api.ConvertToTFLConfig = original


def int8_edges(path: Path) -> None:
    """Drop the QUANTIZE after each float input and the DEQUANTIZE before each float output, in place."""
    from ai_edge_litert import schema_py_generated as schema

    model = read_model(path)
    graph = model.subgraphs[0]
    ops = schema.BuiltinOperator

    def opcode(op: Any) -> int:
        code = model.operatorCodes[op.opcodeIndex]
        return max(code.builtinCode, code.deprecatedBuiltinCode)

    moved: dict[int, int] = {}
    dropped: list[Any] = []
    # (the graph's edge, the side of an op that touches it, the op that sits there, the op's other side)
    for edges, touching, wanted, other in ((graph.inputs, "inputs", ops.QUANTIZE, "outputs"),
                                           (graph.outputs, "outputs", ops.DEQUANTIZE, "inputs")):
        for position, index in enumerate(edges):
            found = [op for op in graph.operators if index in list(getattr(op, touching))]
            if (graph.tensors[index].type == schema.TensorType.FLOAT32 and len(found) == 1
                    and opcode(found[0]) == wanted):
                moved[index] = edges[position] = getattr(found[0], other)[0]
                dropped.append(found[0])
    if not dropped:
        return
    graph.operators = [op for op in graph.operators if all(op is not d for d in dropped)]
    for old, new in moved.items():  # the int8 tensor takes the edge's name, which apps and signatures use
        name = graph.tensors[old].name
        graph.tensors[old].name = (name.decode() if isinstance(name, bytes) else name) + "_float"
        graph.tensors[new].name = name
    move_signature_tensors(model, moved)
    write_model(model, path)
