"""Where the bytes of a .tflite file go: weights by dtype, per-channel quantization parameters, the rest.

INT8 is not 0.25 x FP32: every output channel carries a float32 scale and an int64 zero point, and
biases stay int32, a fixed cost per channel that dominates in thin depthwise layers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

TYPE_NAMES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 9: "int8", 7: "int16"}


def tflite_bytes(path: Path) -> dict[str, int]:
    from ai_edge_litert import schema_py_generated as schema

    data = bytearray(Path(path).read_bytes())
    model = schema.Model.GetRootAs(data, 0)
    out: dict[str, int] = {}
    seen: set[int] = set()
    quant_params = 0
    for g in range(model.SubgraphsLength()):
        graph = model.Subgraphs(g)
        for t in range(graph.TensorsLength()):
            tensor = graph.Tensors(t)
            q = tensor.Quantization()
            if q is not None:
                quant_params += q.ScaleLength() * 4 + q.ZeroPointLength() * 8
            buf = tensor.Buffer()
            if buf in seen or buf == 0:
                continue
            seen.add(buf)
            size = model.Buffers(buf).DataLength()
            if size:
                key = f"weights_{TYPE_NAMES.get(tensor.Type(), str(tensor.Type()))}"
                out[key] = out.get(key, 0) + size
    out["quantization_params"] = quant_params
    out["metadata_and_graph"] = len(data) - int(np.sum([v for v in out.values()]))
    return out
