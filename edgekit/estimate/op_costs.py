"""The format-neutral operator list both graph walkers produce, and its summary features.

Both walkers (TFLite flatbuffer, ONNX) describe a model the way XNNPACK will run it: activations
and padding fused into the convolution before them, reshapes free, quantize/dequantize pairs folded
into integer kernels. So the same network gives the same list from either format.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

# Operator kinds, and what each costs in the model (see cost_model.py).
CONV = "conv"                  # dense convolution (groups = 1, or grouped)
DEPTHWISE = "depthwise"        # one filter per channel: few MACs per byte, runs far below peak
FULLY_CONNECTED = "fully_connected"
ELEMENTWISE = "elementwise"    # add, mul, activations that are not fused, sigmoid, hard-swish
POOL = "pool"                  # average/max pooling, global mean
DATA = "data"                  # concat, transpose, resize, slicing: bytes moved, no arithmetic
# Detection post-processing inside a published detector's graph (TFLite_Detection_PostProcess: decode and
# NMS over every anchor and class, in float, on one thread). Only the calibration networks have it.
POSTPROCESS = "postprocess"
# QuantizeLinear/DequantizeLinear that run as operators of their own (an INT8 ONNX file whose convolutions stay float
# between them): bytes converted, no arithmetic worth counting.
QUANTIZE = "quantize"
KINDS = (CONV, DEPTHWISE, FULLY_CONNECTED, ELEMENTWISE, POOL, DATA, QUANTIZE, POSTPROCESS)
MATMUL_KINDS = (CONV, DEPTHWISE, FULLY_CONNECTED)


@dataclass(frozen=True)
class OpCost:
    kind: str
    op: str          # the format's own operator name (CONV_2D, Conv, ...)
    precision: str   # "fp32" or "int8"
    macs: int        # multiply-accumulates (elementwise/pool: one per element touched)
    act_bytes: int   # activation bytes read and written, in the operator's precision
    weight_bytes: int
    rows: int = 1    # output positions (batch x height x width): how often a dense layer's weights are reused


def summarize(ops: list[OpCost]) -> dict[str, Any]:
    """Per-kind totals (MACs, bytes, count) and the precision that dominates the MACs."""
    kinds: dict[str, dict[str, int]] = defaultdict(lambda: {"ops": 0, "macs": 0, "act_bytes": 0, "weight_bytes": 0})
    int8_macs, float_macs = 0, defaultdict(int)
    for op in ops:
        k = kinds[op.kind]
        k["ops"] += 1
        k["macs"] += op.macs
        k["act_bytes"] += op.act_bytes
        k["weight_bytes"] += op.weight_bytes
        if op.precision == "int8":
            int8_macs += op.macs
        elif op.kind in MATMUL_KINDS:
            float_macs[op.kind] += op.macs
    total = sum(k["macs"] for k in kinds.values())
    # An INT8 file: most MACs in integer kernels, or (an ONNX QDQ graph run as stored) quantize/dequantize operators
    # around float ones. Its float MACs are then listed apart, for the estimate to cost them as float.
    int8 = bool(total and int8_macs * 2 >= total) or QUANTIZE in kinds
    extra = {"float_macs": {k: v for k, v in float_macs.items() if v}} if int8 and any(float_macs.values()) else {}
    return {"kinds": {k: dict(kinds[k]) for k in KINDS if k in kinds},
            "macs": total, "ops": len(ops),
            "precision": "int8" if int8 else "fp32", **extra,
            # [weight bytes, output positions] of each dense layer, biggest first: the estimate charges layers whose
            # weights overflow the target's last-level cache for reading them again per tile of output rows
            "dense_layers": sorted(([op.weight_bytes, op.rows] for op in ops if op.kind in (CONV, FULLY_CONNECTED)),
                                   reverse=True)}


def as_rows(ops: list[OpCost]) -> list[dict[str, Any]]:
    return [asdict(op) for op in ops]
