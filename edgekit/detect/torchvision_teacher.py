"""torchvision's FCOS as a detection teacher: the one torchvision detector whose heads match TinyDetector's.

FCOS is anchor-free with one location per cell, like TinyDetector, and its FPN levels P3 and P4 sit at
TinyDetector's strides 8 and 16 on the same grid (ResNet's stride-2 layers round up, as TinyDetector's
grid does). So its outputs map location by location:

- score: torchvision ranks FCOS detections by sqrt(sigmoid(class) * sigmoid(centre-ness)); the teacher's
  logit is the logit of that score;
- box: FCOS regresses distances in units of the anchor size (= the stride) from the cell's top-left corner
  (torchvision's anchors sit at ``x * stride``); TinyDetector measures from the cell centre, so
  left/top gain half a stride and right/bottom lose one;
- features: the 256-channel P3 and P4 maps, imitated through the student's 1x1 adapters.

Only the two levels are used: objects that FCOS would give to P5-P7 (longer than ~64 px) are outside what
the student predicts anyway at its input sizes. RetinaNet, SSD and the R-CNNs have anchors or proposal
stages that do not map onto one location per cell; they are refused with that reason.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
EPS = 1e-6


@dataclass(frozen=True)
class FCOSSpec:
    num_classes: int
    arch: str = "fcos_resnet50_fpn"
    neck: int = 256  # channels of the imitated feature maps
    width: str = "torchvision"

    def as_dict(self) -> dict:
        return asdict(self)


class FCOSTeacher(nn.Module):
    """Presents a torchvision FCOS with TinyDetector's interface (``forward``, ``forward_train``).

    Input: images through edgekit's recipe (pixel / 255, mean 0, std 1); ImageNet normalisation, which
    torchvision's detectors do inside their transform, is applied here instead (the transform's resizing is
    skipped: the teacher sees the student's input size).
    """

    def __init__(self, spec: FCOSSpec) -> None:
        super().__init__()
        from torchvision.models.detection import fcos_resnet50_fpn

        self.fcos = fcos_resnet50_fpn(weights=None, weights_backbone=None, num_classes=spec.num_classes)
        self.spec = spec
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def neck(self, x: torch.Tensor) -> list[torch.Tensor]:
        levels = list(self.fcos.backbone((x - self.mean) / self.std).values())
        return levels[:2]  # P3, P4: strides 8 and 16

    def raw(self, levels: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Score logits [N, A, C] and TinyDetector-style box distances [N, A, 4] (location-major)."""
        cls = self.fcos.head.classification_head(levels)
        reg, centreness = self.fcos.head.regression_head(levels)
        score = torch.sqrt(torch.sigmoid(cls) * torch.sigmoid(centreness)).clamp(EPS, 1 - EPS)
        shift = torch.tensor([0.5, 0.5, -0.5, -0.5], dtype=reg.dtype)
        return torch.logit(score), (reg + shift).clamp(min=0.0)

    def forward_train(self, x: torch.Tensor) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        levels = self.neck(x)
        logits, boxes = self.raw(levels)
        return {"logits": logits, "boxes": boxes, "features": levels}

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, boxes = self.raw(self.neck(x))
        return torch.sigmoid(logits).transpose(1, 2), boxes.transpose(1, 2)
