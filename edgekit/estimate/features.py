"""The few numbers the latency model reads from an operator summary."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from edgekit.estimate.op_costs import CONV, DATA, DEPTHWISE, ELEMENTWISE, FULLY_CONNECTED, POOL, POSTPROCESS, QUANTIZE


ROW_TILE = 4


@dataclass(frozen=True)
class CostFeatures:
    dense_macs: float      # convolutions and fully connected layers
    depthwise_macs: float
    other_bytes: float     # activation bytes of elementwise, pooling and data-movement operators
    memory_bytes: float    # every operator's activation bytes: traffic that more threads do not speed up
    weight_bytes: float    # read once per inference, mostly from DRAM (they rarely fit the cache)
    ops: int
    precision: str
    postprocess_elements: float = 0.0  # anchors x classes a detector's NMS operator reads (float, one thread)
    dense_layers: tuple[tuple[float, int], ...] = ()  # (weight bytes, output positions) per dense layer
    # MACs an INT8 file runs in float all the same (an ONNX Conv between DequantizeLinear and QuantizeLinear)
    float_dense_macs: float = 0.0
    float_depthwise_macs: float = 0.0

    def spill_bytes(self, cache_bytes: float) -> float:
        """Weight bytes read from memory by dense layers whose weights overflow the cache: once per tile of
        ROW_TILE output positions (GEMM micro-kernels take 4-8 rows at a time), instead of once."""
        return float(sum(w * math.ceil(rows / ROW_TILE) for w, rows in self.dense_layers if w > cache_bytes))

    def with_precision(self, precision: str) -> CostFeatures:
        """The same graph run at another precision: bytes scale with the element size, MACs stay."""
        scale = {"fp32": 4, "int8": 1}
        ratio = scale[precision] / scale[self.precision]
        if self.float_dense_macs or self.float_depthwise_macs:
            raise ValueError("with_precision is for plain graphs (the reference networks), not a mixed INT8 file")
        return CostFeatures(self.dense_macs, self.depthwise_macs, self.other_bytes * ratio, self.memory_bytes * ratio,
                            self.weight_bytes * ratio, self.ops, precision, self.postprocess_elements,
                            tuple((w * ratio, rows) for w, rows in self.dense_layers))


def features_of(summary: dict[str, Any]) -> CostFeatures:
    kinds = summary["kinds"]
    get = lambda kind, key: kinds.get(kind, {}).get(key, 0)  # noqa: E731
    float_macs = summary.get("float_macs", {})  # per kind, in an INT8 file: MACs that still run in float
    floats = lambda *ks: float(sum(float_macs.get(k, 0) for k in ks))  # noqa: E731
    return CostFeatures(
        dense_macs=float(get(CONV, "macs") + get(FULLY_CONNECTED, "macs")) - floats(CONV, FULLY_CONNECTED),
        depthwise_macs=float(get(DEPTHWISE, "macs")) - floats(DEPTHWISE),
        float_dense_macs=floats(CONV, FULLY_CONNECTED),
        float_depthwise_macs=floats(DEPTHWISE),
        other_bytes=float(sum(get(k, "act_bytes") for k in (ELEMENTWISE, POOL, DATA, QUANTIZE))),
        memory_bytes=float(sum(v["act_bytes"] for k, v in kinds.items() if k != POSTPROCESS)),
        weight_bytes=float(sum(v["weight_bytes"] for v in kinds.values())),
        ops=int(summary["ops"]),
        precision=summary["precision"],
        postprocess_elements=float(get(POSTPROCESS, "macs")),
        dense_layers=tuple((float(w), int(rows)) for w, rows in summary.get("dense_layers", [])),
    )
