"""TinyDetector: a single-shot, anchor-free detector built for integer inference on a CPU.

MobileNetV2 backbone (torchvision's blocks, any width), a light FPN neck on strides 8 and 16, and a head per
level that predicts, per cell, class scores and the distances from the cell centre to the box sides
(FCOS-style, in units of the level's stride). The heads are not shared between levels: a module called twice
in one graph breaks PT2E's conv-BN folding in QAT (its BatchNorm counters chain across the two calls). Only convolutions, depthwise convolutions, ReLU6,
add, nearest resize, sigmoid and reshape: all convert to int8. Decoding and NMS stay outside the graph
(detect/postprocess.py), so an app can run them on the two raw outputs.

Outputs: ``scores`` [N, C, A] (sigmoid), ``boxes`` [N, 4, A] (left, top, right, bottom / stride), channel-major
(no transpose in the graph: one after the output quantizer made onnxruntime reject the INT8 ONNX file), where
the A locations are the stride-8 grid then the stride-16 grid, each row-major.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

STRIDES = (8, 16)


@dataclass(frozen=True)
class DetectorSpec:
    num_classes: int
    width: float = 0.35        # backbone width multiplier
    neck: int = 48             # neck and head channels
    head_depth: int = 2        # separable conv blocks in the head

    def as_dict(self) -> dict:
        return asdict(self)


def _separable(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_in, 3, 1, 1, groups=c_in, bias=False), nn.BatchNorm2d(c_in), nn.ReLU6(inplace=True),
        nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU6(inplace=True))


def _pointwise(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU6(inplace=True))


class TinyDetector(nn.Module):
    def __init__(self, spec: DetectorSpec) -> None:
        super().__init__()
        from torchvision.models import mobilenet_v2

        features = mobilenet_v2(weights=None, width_mult=spec.width).features
        self.stage8 = features[:7]     # stride 8
        self.stage16 = features[7:14]  # stride 16
        self.stage32 = features[14:18]  # stride 32
        c8, c16, c32 = (self._channels(m) for m in (self.stage8, self.stage16, self.stage32))
        n = spec.neck
        self.lateral8, self.lateral16, self.lateral32 = _pointwise(c8, n), _pointwise(c16, n), _pointwise(c32, n)
        self.smooth8, self.smooth16 = _separable(n, n), _separable(n, n)
        self.heads = nn.ModuleList(nn.Sequential(*[_separable(n, n) for _ in range(spec.head_depth)]) for _ in STRIDES)
        self.cls = nn.ModuleList(nn.Conv2d(n, spec.num_classes, 1) for _ in STRIDES)
        self.box = nn.ModuleList(nn.Conv2d(n, 4, 1) for _ in STRIDES)
        self.spec = spec
        for cls, box in zip(self.cls, self.box):
            nn.init.constant_(cls.bias, -4.0)  # start from "background everywhere" (focal-loss prior of 0.02)
            nn.init.constant_(box.bias, 1.0)

    @staticmethod
    def _channels(stage: nn.Sequential) -> int:
        return [m for m in stage.modules() if isinstance(m, nn.Conv2d)][-1].out_channels

    def neck(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The neck's feature maps at strides 8 and 16 (what feature distillation imitates)."""
        c8 = self.stage8(x)
        c16 = self.stage16(c8)
        c32 = self.stage32(c16)
        p32 = self.lateral32(c32)
        p16 = self.smooth16(self.lateral16(c16) + nn.functional.interpolate(p32, size=c16.shape[-2:], mode="nearest"))
        p8 = self.smooth8(self.lateral8(c8) + nn.functional.interpolate(p16, size=c8.shape[-2:], mode="nearest"))
        return [p8, p16]

    def raw(self, levels: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Class logits [N, C, A] and box distances [N, 4, A] (stride units, >= 0) from neck features."""
        logits, boxes = [], []
        for p, head, cls, box in zip(levels, self.heads, self.cls, self.box):
            h = head(p)
            logits.append(cls(h).flatten(2))
            boxes.append(torch.relu(box(h)).flatten(2))
        return torch.cat(logits, 2), torch.cat(boxes, 2)

    def forward_train(self, x: torch.Tensor) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        """Logits [N, A, C] and boxes [N, A, 4] (location-major, as the losses take them) and the neck maps."""
        levels = self.neck(x)
        logits, boxes = self.raw(levels)
        return {"logits": logits.transpose(1, 2), "boxes": boxes.transpose(1, 2), "features": levels}

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, boxes = self.raw(self.neck(x))
        return torch.sigmoid(logits), boxes


def grid(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cell centres (x, y in pixels) and strides of every location, in the order of the outputs."""
    centres, strides = [], []
    for s in STRIDES:
        n = -(-size // s)  # ceil: the backbone's padding keeps partial cells
        ys, xs = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
        centres.append(torch.stack([(xs.flatten() + 0.5) * s, (ys.flatten() + 0.5) * s], 1))
        strides.append(torch.full((n * n,), float(s)))
    return torch.cat(centres).float(), torch.cat(strides)
