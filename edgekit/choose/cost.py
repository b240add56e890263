"""Every candidate's INT8 cost on the target before training: latency estimate with its band, MACs, file size.

The latency is the benchmark's own estimate (estimate/target_estimate.py) of the operator list the candidate's
INT8 TFLite file will hold, walked from its untrained PyTorch graph (estimate/torch_graph.py). A candidate family
(architecture and width) is traced once and run again at each of its input sizes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import torch

from edgekit.choose.candidates import Candidate
from edgekit.estimate.op_costs import OpCost, summarize
from edgekit.estimate.target_estimate import calibrate, estimate
from edgekit.estimate.torch_graph import export_program, program_ops
from edgekit.errors import EdgekitError
from edgekit.models.checkpoint import count_parameters

# An INT8 TFLite file beyond its weights and int32 biases: a per-channel scale (float32) and zero point (int64) for
# each output channel's weights and again for its bias (24 B a channel), and the graph and metadata. Fitted on the
# digits student's file (632,210 B: weights 423,056, quantization parameters 170,086 = 24.1 B x 7,050 channels,
# graph and metadata 39,014 B for 64 operators).
QPARAM_BYTES_PER_CHANNEL = 24
GRAPH_BYTES = 16 * 1024
GRAPH_BYTES_PER_OP = 350


def output_channels(model: torch.nn.Module) -> int:
    return sum(m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d)) + \
        sum(m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear))


def int8_file_bytes(ops: list[OpCost], channels: int) -> int:
    """The INT8 TFLite file's size, estimated from its operators (its weights are exact; the rest is fitted)."""
    return sum(op.weight_bytes for op in ops) + QPARAM_BYTES_PER_CHANNEL * channels + GRAPH_BYTES + \
        GRAPH_BYTES_PER_OP * len(ops)


def _ops_at(model: torch.nn.Module, program: Any, size: int, traced: int) -> list[OpCost]:
    """The operator list at ``size`` from the program traced at ``traced``; a graph whose shapes were fixed when it
    was traced (a nearest resize to a stored size, as in TinyDetector's neck) is traced again at ``size``."""
    if size == traced:
        return program_ops(program, "int8", None)
    example = torch.zeros(1, 3, size, size)
    try:
        return program_ops(program, "int8", example)
    except RuntimeError:
        return program_ops(export_program(model, example), "int8", None)


def candidate_costs(candidates: list[Candidate], build: Callable[[Candidate], torch.nn.Module],
                    profile: dict[str, Any], threads: int) -> list[dict[str, Any]]:
    """One row a candidate: its estimate on ``profile`` at ``threads`` (ms, band), MACs, parameters, INT8 bytes."""
    cal = calibrate(profile)
    if cal is None:
        raise EdgekitError(f"target '{profile['name']}' has no measured figures to estimate latency from",
                           "pick a target with [[figures]] (edgekit targets) or give --student and --size")
    families: dict[tuple[str, float], list[Candidate]] = defaultdict(list)
    for c in candidates:
        families[c.arch, c.width].append(c)
    rows: dict[Candidate, dict[str, Any]] = {}
    for members in families.values():
        model = build(members[0]).eval()
        params, channels = count_parameters(model), output_channels(model)
        smallest = min(c.size for c in members)
        program = export_program(model, torch.zeros(1, 3, smallest, smallest))
        for c in members:
            ops = _ops_at(model, program, c.size, smallest)
            est = estimate(summarize(ops), cal, threads)
            rows[c] = {"candidate": c.label, "arch": c.arch, "width": c.width, "size": c.size,
                       "estimate_ms": est["ms"], "band_pct": est["band_pct"], "high_ms": est["high_ms"],
                       "macs": est["macs"], "params": params, "int8_bytes": int8_file_bytes(ops, channels),
                       "calibrated_range": est["calibrated_range"]}
    return [rows[c] for c in candidates]
