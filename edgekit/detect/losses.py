"""Detection losses: the ground-truth loss (focal + GIoU) and the distillation terms, each logged apart.

Every loss has the call shape of DESIGN.md section 3: ``loss(student_out, teacher_out, targets) -> (total, parts)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torchvision.ops import generalized_box_iou_loss, sigmoid_focal_loss


def ltrb_to_xyxy(ltrb: torch.Tensor, centres: torch.Tensor, strides: torch.Tensor) -> torch.Tensor:
    """Distances (stride units) from each cell centre to the box sides -> [x0, y0, x1, y1] pixels."""
    d = ltrb * strides[..., None]
    return torch.stack([centres[..., 0] - d[..., 0], centres[..., 1] - d[..., 1],
                        centres[..., 0] + d[..., 2], centres[..., 1] + d[..., 3]], -1)


@dataclass
class DetectionTargets:
    cls: torch.Tensor        # [N, A, C]
    box: torch.Tensor        # [N, A, 4] ltrb / stride
    positive: torch.Tensor   # [N, A] bool
    centres: torch.Tensor    # [A, 2]
    strides: torch.Tensor    # [A]


def ground_truth_loss(out: dict, t: DetectionTargets) -> tuple[torch.Tensor, dict[str, float]]:
    n_pos = max(1.0, float(t.positive.sum()))
    cls = sigmoid_focal_loss(out["logits"], t.cls, reduction="sum") / n_pos
    if t.positive.any():
        pred = ltrb_to_xyxy(out["boxes"][t.positive], t.centres.expand(len(t.positive), -1, -1)[t.positive],
                            t.strides.expand(len(t.positive), -1)[t.positive])
        goal = ltrb_to_xyxy(t.box[t.positive], t.centres.expand(len(t.positive), -1, -1)[t.positive],
                            t.strides.expand(len(t.positive), -1)[t.positive])
        box = generalized_box_iou_loss(pred, goal, reduction="mean")
    else:
        box = out["boxes"].sum() * 0.0
    total = cls + 2.0 * box
    return total, {"cls": float(cls.detach()), "box": float(box.detach())}


class DetectionKD(nn.Module):
    """Ground truth + class-score KD at temperature T + box imitation + neck feature imitation.

    - score KD: binary KL between teacher and student sigmoid scores at temperature T, scaled by T²,
      averaged over locations and classes (every location teaches, background included);
    - box imitation: L1 between student and teacher box distances where the teacher is confident
      (max score >= ``confident``);
    - feature imitation: MSE between a learned 1x1 adapter of each student neck map and the teacher's.
    ``weights`` sets each term's weight and ``gt_weight`` the ground-truth loss's (without a teacher the
    ground-truth loss is used alone, at weight 1).
    """

    def __init__(self, student_channels: int, teacher_channels: int, temperature: float = 2.0,
                 weights: dict[str, float] | None = None, confident: float = 0.5, gt_weight: float = 1.0) -> None:
        super().__init__()
        self.temperature = temperature
        self.gt_weight = gt_weight
        self.weights = {"score_kd": 1.0, "box_imitation": 1.0, "feature": 1.0, **(weights or {})}
        self.confident = confident
        self.adapters = nn.ModuleList(nn.Conv2d(student_channels, teacher_channels, 1) for _ in range(2))

    def forward(self, student: dict, teacher: dict | None, targets: DetectionTargets
                ) -> tuple[torch.Tensor, dict[str, float]]:
        gt, parts = ground_truth_loss(student, targets)
        if teacher is None:
            return gt, parts
        total = self.gt_weight * gt
        t = self.temperature
        p_t = torch.sigmoid(teacher["logits"].detach() / t)
        log_s = nn.functional.logsigmoid(student["logits"] / t)
        log_not_s = nn.functional.logsigmoid(-student["logits"] / t)
        eps = 1e-6
        kl = p_t * (torch.log(p_t + eps) - log_s) + (1 - p_t) * (torch.log(1 - p_t + eps) - log_not_s)
        score_kd = kl.mean() * t * t
        confident = torch.sigmoid(teacher["logits"].detach()).max(-1).values >= self.confident
        if confident.any():
            box_imitation = nn.functional.l1_loss(student["boxes"][confident], teacher["boxes"].detach()[confident])
        else:
            box_imitation = student["boxes"].sum() * 0.0
        if self.weights["feature"] > 0 and student.get("features") is not None:
            feature = sum(nn.functional.mse_loss(adapter(s), tf.detach())
                          for adapter, s, tf in zip(self.adapters, student["features"], teacher["features"])) / 2
        else:  # QAT: the prepared graph exposes only its outputs
            feature = student["logits"].sum() * 0.0
        w = self.weights
        total = total + w["score_kd"] * score_kd + w["box_imitation"] * box_imitation + w["feature"] * feature
        parts.update(score_kd=float(score_kd.detach()), box_imitation=float(box_imitation.detach()),
                     feature=float(feature.detach()))
        return total, parts
