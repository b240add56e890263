"""Feature-map terms: FitNet hints and attention transfer, between layers paired by module path.

Teacher and student layers pair up in order (``teacher_layers[i]`` with ``student_layers[i]``);
hooks.stride_layers picks pairs of equal resolution by default. When the two maps of a pair differ in
size, the larger is average-pooled to the smaller.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from edgekit.distill.hooks import Outputs


def _pool_to(x: torch.Tensor, side: int) -> torch.Tensor:
    return x if x.shape[-1] == side and x.shape[-2] == side else F.adaptive_avg_pool2d(x, side)


class FitNet:
    """FitNets (Romero et al., ICLR 2015) as one stage: ``MSE(adapter(student hint), teacher hint)``.

    The adapter is a learned 1x1 convolution from the student's channels to the teacher's, trained with
    the student and dropped afterwards. mdistiller weighs the hint by 100 on CIFAR ResNets; here (raw
    ResNet stage outputs, MSE of a few units at the start) that drowns the labels and diverged, so the
    default weight is 1.
    """

    name = "fitnet"
    embedding = False

    def __init__(self, student_layer: str, teacher_layer: str, student_shape: tuple[int, ...],
                 teacher_shape: tuple[int, ...], weight: float = 1.0) -> None:
        self.student_layers = [student_layer]
        self.teacher_layers = [teacher_layer]
        self.side = min(student_shape[-1], teacher_shape[-1])
        self.weight = weight
        self.adapter = torch.nn.Conv2d(student_shape[1], teacher_shape[1], kernel_size=1)

    def teacher_side(self, teacher: Outputs) -> dict[str, torch.Tensor]:
        return {f"fitnet:{self.teacher_layers[0]}": _pool_to(teacher.features[self.teacher_layers[0]], self.side)}

    def __call__(self, student: Outputs, teacher: Outputs, targets: torch.Tensor) -> torch.Tensor:
        hint = self.adapter(_pool_to(student.features[self.student_layers[0]], self.side))
        return self.weight * F.mse_loss(hint, teacher.features[f"fitnet:{self.teacher_layers[0]}"])

    def parameters(self) -> list[torch.nn.Parameter]:
        return list(self.adapter.parameters())


def attention_map(feature: torch.Tensor, side: int, p: float = 2.0) -> torch.Tensor:
    """Zagoruyko & Komodakis: the channel mean of ``|f|^p``, flattened and L2-normalised per image."""
    spatial = _pool_to(feature.abs().pow(p).mean(1, keepdim=True), side)
    return F.normalize(spatial.flatten(1), dim=1)


class AttentionTransfer:
    """Attention transfer (ICLR 2017): ``weight * sum over pairs of ||a_s - a_t||^2``, mean over the batch.

    p = 2 as in the paper. The paper averages the squared difference over the map's elements and weighs it
    by 1000, on 32x32 maps: about the plain sum over the map. The sum keeps that size on the small maps
    of small inputs (8x8, 4x4, 2x2 at 32 px), where the paper's mean times 1000 grew 16-256 times and
    drowned the labels; weight 1 by default.
    """

    name = "at"
    embedding = False

    def __init__(self, student_layers: list[str], teacher_layers: list[str], student_sides: list[int],
                 teacher_sides: list[int], p: float = 2.0, weight: float = 1.0) -> None:
        self.student_layers = list(student_layers)
        self.teacher_layers = list(teacher_layers)
        self.sides = [min(s, t) for s, t in zip(student_sides, teacher_sides)]
        self.p = p
        self.weight = weight

    def teacher_side(self, teacher: Outputs) -> dict[str, torch.Tensor]:
        return {f"at:{path}": attention_map(teacher.features[path], side, self.p)
                for path, side in zip(self.teacher_layers, self.sides)}

    def __call__(self, student: Outputs, teacher: Outputs, targets: torch.Tensor) -> torch.Tensor:
        total = torch.zeros((), device=student.logits.device)
        for s_path, t_path, side in zip(self.student_layers, self.teacher_layers, self.sides):
            a_s = attention_map(student.features[s_path], side, self.p)
            total = total + (a_s - teacher.features[f"at:{t_path}"]).pow(2).sum(1).mean()
        return self.weight * total

    def parameters(self) -> list[torch.nn.Parameter]:
        return []
