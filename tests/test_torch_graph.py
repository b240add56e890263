"""The pre-training walk of an untrained network (estimate/torch_graph.py) against the walk of its converted file.

The target-driven student choice ranks candidates by this walk; issue 20 asks that a candidate's pre-training
estimate be within 10 % of the estimate of its own final INT8 TFLite file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from edgekit.estimate.op_costs import summarize
from edgekit.estimate.target_estimate import calibrate, estimate
from edgekit.estimate.target_profiles import load_target
from edgekit.estimate.tflite_graph import tflite_ops
from edgekit.estimate.torch_graph import torch_ops
from edgekit.models.builders import build_model

WITHIN = 0.10  # issue 20: pre-training estimate within 10 % of the final INT8 file's


def test_pre_training_estimate_matches_the_runs_int8_tflite(e2e_run: Path) -> None:
    """The run's student, rebuilt untrained from its spec, walks into the operator list of its INT8 TFLite."""
    run = e2e_run / "run"
    spec = json.loads((run / "distill" / "model.json").read_text(encoding="utf-8"))
    height, width = json.loads((run / "artifacts" / "preprocess.json").read_text(encoding="utf-8"))["size"]
    before = summarize(torch_ops(build_model(spec), torch.zeros(1, 3, height, width), "int8"))
    after = summarize(tflite_ops(run / "artifacts" / "model_int8.tflite"))
    assert before["precision"] == after["precision"] == "int8"
    assert before["macs"] == after["macs"]
    assert {k: v["ops"] for k, v in before["kinds"].items()} == {k: v["ops"] for k, v in after["kinds"].items()}
    cal = calibrate(load_target("rpi4"))
    predicted, final = estimate(before, cal, 4)["ms"], estimate(after, cal, 4)["ms"]
    assert abs(predicted / final - 1) <= WITHIN, (predicted, final)


@pytest.mark.parametrize("arch,width,size", [("mobilenet_v3_small", 0.75, 64)])
def test_walk_follows_the_converter_on_hard_swish_and_squeeze_excite(arch: str, width: float, size: int,
                                                                      tmp_path: Path) -> None:
    """MobileNetV3's hard-swish, squeeze-excite multiply and hard-sigmoid become the elementwise operators the
    converted FP32 file holds, with the same MACs and bytes to within a few constants."""
    from edgekit.export.tflite_format import export_tflite

    model = build_model({"arch": arch, "width": width, "num_classes": 10}).eval()
    x = torch.zeros(1, 3, size, size)
    before = summarize(torch_ops(model, x, "fp32"))
    export_tflite(model, x, tmp_path / "m.tflite", int8=False)
    after = summarize(tflite_ops(tmp_path / "m.tflite"))
    assert before["macs"] == after["macs"] and before["precision"] == after["precision"] == "fp32"
    for kind, counts in after["kinds"].items():
        assert before["kinds"][kind]["ops"] == counts["ops"], kind
        for key in ("macs", "act_bytes"):
            assert before["kinds"][kind][key] == counts[key], (kind, key)
        # a few scalar constants (hard-sigmoid's) and float biases differ: within 1 % or 64 bytes
        assert abs(before["kinds"][kind]["weight_bytes"] - counts["weight_bytes"]) <= max(0.01 * counts["weight_bytes"], 64), kind


def test_unknown_operators_count_as_elementwise() -> None:
    """An operator the walk has no rule for is charged like the file walkers charge one: an elementwise op."""
    class Odd(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.erf(x)

    [op] = torch_ops(Odd(), torch.zeros(1, 3, 4, 4))
    assert op.kind == "elementwise" and op.macs == 48 and op.act_bytes == 96
