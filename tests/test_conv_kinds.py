"""Skipping torchao's conv-BN QAT passes for absent conv kinds leaves prepare's and convert's graphs unchanged."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_qat_pt2e

from edgekit.quantize import pt2e
from edgekit.quantize.conv_kinds import has_conv_kind


class _ConvBn(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, bias=False), torch.nn.BatchNorm2d(8),
                                        torch.nn.ReLU6(), torch.nn.Conv2d(8, 8, 3, groups=8), torch.nn.BatchNorm2d(8))
        self.head = torch.nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).mean((2, 3)))


def test_graphs_match_torchao_without_the_skip() -> None:
    torch.manual_seed(0)
    model, example = _ConvBn(), torch.randn(2, 3, 12, 12)
    prepared = pt2e.prepare(model, example, "qat")
    captured = pt2e.capture(copy.deepcopy(model), example, train=True)
    assert has_conv_kind(captured, F.conv2d) and not has_conv_kind(captured, F.conv_transpose2d)
    plain_prepared = prepare_qat_pt2e(captured, pt2e.xnnpack_quantizer(True))
    assert prepared.code == plain_prepared.code

    for graph in (prepared, plain_prepared):  # a few QAT steps so BatchNorm statistics and observers move
        for _ in range(3):
            graph(torch.randn(4, 3, 12, 12))
    plain_prepared.load_state_dict(prepared.state_dict())
    pt2e.to_eval(prepared)
    pt2e.to_eval(plain_prepared)
    converted = pt2e.convert(prepared)
    plain = convert_pt2e(copy.deepcopy(plain_prepared), fold_quantize=False)
    assert converted.code == plain.code
    x = torch.randn(5, 3, 12, 12)
    assert torch.equal(converted(x), plain(x))
