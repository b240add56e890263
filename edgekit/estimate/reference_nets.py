"""The standard networks whose published device latencies calibrate the estimate.

Only their graphs matter (operator shapes, not weights), so they are built untrained: torchvision's
builders where torchvision has the network, and MobileNet v1 and EfficientNet-Lite0 written out here
from their papers' layer tables (TensorFlow's reference releases, 1001 classes, no download).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def _conv_bn(cin: int, cout: int, kernel: int, stride: int, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


def mobilenet_v1(width: float = 1.0, classes: int = 1001) -> nn.Module:
    """Howard et al. 2017, table 1: a 3x3 stem then 13 depthwise-separable blocks."""
    blocks = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
    c = int(32 * width)
    layers: list[nn.Module] = [_conv_bn(3, c, 3, 2)]
    for out, stride in blocks:
        o = int(out * width)
        layers += [_conv_bn(c, c, 3, stride, groups=c), _conv_bn(c, o, 1, 1)]
        c = o
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, classes))


class _MBConv(nn.Module):
    def __init__(self, cin: int, cout: int, expand: int, kernel: int, stride: int) -> None:
        super().__init__()
        mid = cin * expand
        layers = [_conv_bn(cin, mid, 1, 1)] if expand != 1 else []
        layers += [_conv_bn(mid, mid, kernel, stride, groups=mid), _conv_bn(mid, cout, 1, 1, act=False)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


# EfficientNet-B0's MBConv table: (expand, kernel, stride, channels, repeats).
B0_TABLE = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3),
            (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]


def _round_filters(channels: int, width: float) -> int:
    scaled = channels * width
    out = max(8, int(scaled + 4) // 8 * 8)
    return out + 8 if out < 0.9 * scaled else out


def efficientnet_lite_stages(width: float = 1.0, depth: float = 1.0) -> tuple[list[nn.Sequential], list[int]]:
    """The Lite backbone as 7 stages (ReLU6, no squeeze-excite; the stem and the first and last stages are not
    scaled, as in the Lite release) and each stage's output channels."""
    import math

    stem = _conv_bn(3, 32, 3, 2)
    stages, channels, c = [], [], 32
    for i, (expand, kernel, stride, out, repeats) in enumerate(B0_TABLE):
        o = out if i == len(B0_TABLE) - 1 else _round_filters(out, width)
        n = repeats if i in (0, len(B0_TABLE) - 1) else math.ceil(depth * repeats)
        blocks: list[nn.Module] = [stem] if i == 0 else []
        for j in range(n):
            blocks.append(_MBConv(c, o, expand, kernel, stride if j == 0 else 1))
            c = o
        stages.append(nn.Sequential(*blocks))
        channels.append(o)
    return stages, channels


def efficientnet_lite0(classes: int = 1001) -> nn.Module:
    stages, channels = efficientnet_lite_stages()
    return nn.Sequential(*stages, _conv_bn(channels[-1], 1280, 1, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(1280, classes))


def _separable(c_in: int, c_out: int, act: bool = True) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_in, 3, 1, 1, groups=c_in, bias=False), _conv_bn(c_in, c_out, 1, 1, act=act))


class _BiFPNLayer(nn.Module):
    """One BiFPN layer over P3..P7 (Tan et al. 2020): top-down then bottom-up, fast normalized fusion."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.td = nn.ModuleList(_separable(c, c) for _ in range(4))   # P6, P5, P4, P3
        self.bu = nn.ModuleList(_separable(c, c) for _ in range(4))   # P4, P5, P6, P7
        self.w_td = nn.Parameter(torch.ones(4, 2))
        self.w_bu = nn.Parameter(torch.ones(4, 3))
        self.down = nn.MaxPool2d(3, 2, 1)

    @staticmethod
    def _fuse(weights: torch.Tensor, inputs: list[torch.Tensor]) -> torch.Tensor:
        w = torch.relu(weights[:len(inputs)])
        return sum(wi * x for wi, x in zip(w, inputs)) / (w.sum() + 1e-4)

    @staticmethod
    def up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return nn.functional.interpolate(x, size=like.shape[-2:], mode="nearest")

    def forward(self, p: list[torch.Tensor]) -> list[torch.Tensor]:
        p3, p4, p5, p6, p7 = p
        t6 = self.td[0](self._fuse(self.w_td[0], [p6, self.up(p7, p6)]))
        t5 = self.td[1](self._fuse(self.w_td[1], [p5, self.up(t6, p5)]))
        t4 = self.td[2](self._fuse(self.w_td[2], [p4, self.up(t5, p4)]))
        o3 = self.td[3](self._fuse(self.w_td[3], [p3, self.up(t4, p3)]))
        o4 = self.bu[0](self._fuse(self.w_bu[0], [p4, t4, self.down(o3)]))
        o5 = self.bu[1](self._fuse(self.w_bu[1], [p5, t5, self.down(o4)]))
        o6 = self.bu[2](self._fuse(self.w_bu[2], [p6, t6, self.down(o5)]))
        o7 = self.bu[3](self._fuse(self.w_bu[3], [p7, self.down(o6)]))
        return [o3, o4, o5, o6, o7]


class EfficientDetLite(nn.Module):
    """EfficientDet-Lite (automl's efficientdet-lite0..2 configs): Lite backbone, BiFPN on P3-P7, class and box
    heads of separable convolutions shared over levels, 9 anchors, 90 COCO classes. The TFLite release's
    detection post-processing (a custom NMS operator) is not part of this graph; the sigmoid and concatenation
    of the scores before it are."""

    def __init__(self, width: float, depth: float, fpn: int, fpn_repeats: int, head_repeats: int = 3,
                 classes: int = 90, anchors: int = 9) -> None:
        super().__init__()
        stages, channels = efficientnet_lite_stages(width, depth)
        self.to_p3 = nn.Sequential(*stages[:3])
        self.to_p4 = nn.Sequential(*stages[3:5])
        self.to_p5 = nn.Sequential(*stages[5:])
        self.lateral = nn.ModuleList(_conv_bn(c, fpn, 1, 1, act=False) for c in (channels[2], channels[4], channels[6]))
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.bifpn = nn.Sequential(*[_BiFPNLayer(fpn) for _ in range(fpn_repeats)])
        self.class_net = nn.Sequential(*[_separable(fpn, fpn) for _ in range(head_repeats)], _separable(fpn, anchors * classes, act=False))
        self.box_net = nn.Sequential(*[_separable(fpn, fpn) for _ in range(head_repeats)], _separable(fpn, anchors * 4, act=False))
        self.classes = classes
        self.anchors = anchors

    def postprocess_elements(self, size: int) -> int:
        """Scores the release's NMS operator reads: anchors per location x locations over P3-P7 x classes."""
        import math

        side, locations = size, 0
        for level in range(1, 8):
            side = math.ceil(side / 2)
            if level >= 3:
                locations += side * side
        return self.anchors * locations * self.classes

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c3 = self.to_p3(x)
        c4 = self.to_p4(c3)
        c5 = self.to_p5(c4)
        p5 = self.lateral[2](c5)
        p6 = self.pool(p5)
        levels = [self.lateral[0](c3), self.lateral[1](c4), p5, p6, self.pool(p6)]
        for layer in self.bifpn:
            levels = layer(levels)
        # Flattened channel-major: the release is NHWC, where this flattening is free; a permute here would add
        # transposes that the real graph does not have.
        scores = torch.cat([self.class_net(p).flatten(2) for p in levels], 2)
        boxes = torch.cat([self.box_net(p).flatten(2) for p in levels], 2)
        return torch.sigmoid(scores), boxes


def _torchvision(name: str, **kwargs: object) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        from torchvision import models

        return models.get_model(name, weights=None, num_classes=1001, **kwargs)
    return build


# name -> (builder, input size). Names follow the TensorFlow model zoo's, as published figures do.
REFERENCE_NETS: dict[str, tuple[Callable[[], nn.Module], int]] = {
    "mobilenet_v1_1.0_224": (mobilenet_v1, 224),
    "mobilenet_v2_1.0_224": (_torchvision("mobilenet_v2"), 224),
    "mobilenet_v3_large_1.0_224": (_torchvision("mobilenet_v3_large"), 224),
    "mobilenet_v3_small_1.0_224": (_torchvision("mobilenet_v3_small"), 224),
    "efficientnet_lite0_224": (efficientnet_lite0, 224),
    "resnet50_224": (_torchvision("resnet50"), 224),
    "inception_v3_299": (_torchvision("inception_v3", aux_logits=False, init_weights=False), 299),
    "efficientdet_lite0_320": (lambda: EfficientDetLite(1.0, 1.0, 64, 3), 320),
    "efficientdet_lite1_384": (lambda: EfficientDetLite(1.0, 1.1, 88, 4), 384),
    "efficientdet_lite2_448": (lambda: EfficientDetLite(1.1, 1.2, 112, 5), 448),
}
