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


def box_iou_pairs(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of each box in ``a`` with the box at the same index in ``b`` (xyxy)."""
    w = (torch.minimum(a[:, 2], b[:, 2]) - torch.maximum(a[:, 0], b[:, 0])).clamp(min=0)
    h = (torch.minimum(a[:, 3], b[:, 3]) - torch.maximum(a[:, 1], b[:, 1])).clamp(min=0)
    inter = w * h
    union = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return inter / union.clamp(min=1e-9)


@dataclass
class DetectionTargets:
    cls: torch.Tensor        # [N, A, C]
    box: torch.Tensor        # [N, A, 4] ltrb / stride
    positive: torch.Tensor   # [N, A] bool
    centres: torch.Tensor    # [A, 2]
    strides: torch.Tensor    # [A]


def quality_focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Quality focal loss (Li et al., Generalized Focal Loss, 2020): BCE against a soft target (the IoU of the
    predicted box on positives, 0 elsewhere), scaled by |target - sigmoid|^2. Summed."""
    bce = nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (bce * (target - torch.sigmoid(logits)).abs().pow(2)).sum()


def ground_truth_loss(out: dict, t: DetectionTargets, quality: bool = True) -> tuple[torch.Tensor, dict[str, float]]:
    """GIoU on positive locations, and for classes either the quality focal loss (``quality``: the score
    learns the IoU of its own box, so boxes rank by how well they fit) or the plain sigmoid focal loss."""
    n_pos = max(1.0, float(t.positive.sum()))
    cls_target = t.cls
    if t.positive.any():
        pred = ltrb_to_xyxy(out["boxes"][t.positive], t.centres.expand(len(t.positive), -1, -1)[t.positive],
                            t.strides.expand(len(t.positive), -1)[t.positive])
        goal = ltrb_to_xyxy(t.box[t.positive], t.centres.expand(len(t.positive), -1, -1)[t.positive],
                            t.strides.expand(len(t.positive), -1)[t.positive])
        box = generalized_box_iou_loss(pred, goal, reduction="mean")
        if quality:
            iou = box_iou_pairs(pred.detach(), goal).clamp(min=0.0)
            cls_target = t.cls.clone()
            cls_target[t.positive] = t.cls[t.positive] * iou[:, None]
    else:
        box = out["boxes"].sum() * 0.0
    if quality:
        cls = quality_focal_loss(out["logits"], cls_target) / n_pos
    else:
        cls = sigmoid_focal_loss(out["logits"], cls_target, reduction="sum") / n_pos
    total = cls + 2.0 * box
    return total, {"cls": float(cls.detach()), "box": float(box.detach())}


def binary_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per element KL between the teacher's and the student's sigmoid scores at ``temperature`` (exact, no eps)."""
    t_logits, s_logits = teacher_logits / temperature, student_logits / temperature
    p_t = torch.sigmoid(t_logits)
    log_t, log_not_t = nn.functional.logsigmoid(t_logits), nn.functional.logsigmoid(-t_logits)
    log_s, log_not_s = nn.functional.logsigmoid(s_logits), nn.functional.logsigmoid(-s_logits)
    return p_t * (log_t - log_s) + (1 - p_t) * (log_not_t - log_not_s)


class DetectionKD(nn.Module):
    """Ground truth + class-score KD at temperature T + box imitation + neck feature imitation.

    - score KD: binary KL between teacher and student sigmoid scores at temperature T, scaled by T²,
      summed over locations and classes (every location teaches, background included) and divided by
      the number of positive locations, like the ground-truth class loss;
    - box imitation: L1 between student and teacher box distances where the teacher is confident
      (max score >= ``confident``);
    - feature imitation: MSE between a learned 1x1 adapter of each student neck map and the teacher's.
    ``weights`` sets each term's weight and ``gt_weight`` the ground-truth loss's (without a teacher the
    ground-truth loss is used alone, at weight 1).
    """

    def __init__(self, student_channels: int, teacher_channels: int, temperature: float = 2.0,
                 weights: dict[str, float] | None = None, confident: float = 0.5, gt_weight: float = 1.0,
                 quality: bool = True, score_loss: str = "kl") -> None:
        super().__init__()
        self.quality = quality
        self.score_loss = score_loss
        self.temperature = temperature
        self.gt_weight = gt_weight
        self.weights = {"score_kd": 1.0, "box_imitation": 1.0, "feature": 1.0, **(weights or {})}
        self.confident = confident
        self.adapters = nn.ModuleList(nn.Conv2d(student_channels, teacher_channels, 1) for _ in range(2))

    def _score_kd(self, s_logits: torch.Tensor, t_logits: torch.Tensor, targets: DetectionTargets) -> torch.Tensor:
        n_pos = max(1.0, float(targets.positive.sum()))
        if self.score_loss == "qfl":  # the ground-truth class loss with the teacher's scores as the soft target
            return quality_focal_loss(s_logits, torch.sigmoid(t_logits)) / n_pos
        # summed over locations and classes and divided by the positives, as the ground-truth class loss is:
        # a mean over every location let background dilute it to ~1/30 of the other terms
        t = self.temperature
        return binary_kl(s_logits, t_logits, t).sum() / n_pos * t * t

    def forward(self, student: dict, teacher: dict | None, targets: DetectionTargets
                ) -> tuple[torch.Tensor, dict[str, float]]:
        gt, parts = ground_truth_loss(student, targets, self.quality)
        if teacher is None:
            return gt, parts
        total = self.gt_weight * gt
        score_kd = self._score_kd(student["logits"], teacher["logits"].detach(), targets)
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
