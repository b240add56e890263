"""The INT8 graph rebuilt from safetensors is the one the quantize stage measured, bit for bit."""

from __future__ import annotations

import torch
import torchvision

from edgekit.quantize import pt2e


def test_rebuilt_prepared_graph_converts_to_identical_int8() -> None:
    torch.manual_seed(0)
    student = torchvision.models.mobilenet_v2(width_mult=0.25, num_classes=10).eval()
    x = torch.rand(8, 3, 16, 16)
    prepared = pt2e.prepare(student, x[:2], "qat")
    pt2e.to_train(prepared)
    with torch.no_grad():
        for _ in range(3):
            prepared(torch.rand(16, 3, 16, 16))
    pt2e.to_eval(prepared)
    state = {k: v.detach().clone() for k, v in prepared.state_dict().items()}  # as safetensors gives it back
    rebuilt = pt2e.rebuild_prepared(student, x[:2], "qat", state)
    eps = [k for k in state if k.endswith(".eps")]
    assert eps and all(torch.equal(rebuilt.state_dict()[k], state[k]) for k in eps)
    assert torch.equal(pt2e.convert(prepared)(x), pt2e.convert(rebuilt)(x))
