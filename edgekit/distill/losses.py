"""Distillation losses with one call shape: ``loss(student_out, teacher_out, targets) -> (total, parts)``.

Convention for ``alpha``: it is the weight of the *soft* (teacher) term, as in Hinton et al. and
torchdistill's KDLoss: ``total = alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, y)``.
``alpha = 0`` is plain supervised training; ``alpha = 1`` learns from the teacher alone. The soft term
is multiplied by T^2 so its gradients keep their size as T changes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class KDLoss:
    def __init__(self, temperature: float = 4.0, alpha: float = 0.7) -> None:
        self.temperature = temperature
        self.alpha = alpha

    def soft_term(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
        t = self.temperature
        kl = F.kl_div(F.log_softmax(student_logits / t, dim=1), F.log_softmax(teacher_logits / t, dim=1),
                      reduction="batchmean", log_target=True)
        return kl * t * t

    def __call__(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor | None,
                 targets: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        hard = F.cross_entropy(student_logits, targets)
        if teacher_logits is None or self.alpha == 0.0:
            return hard, {"ce": float(hard.detach())}
        soft = self.soft_term(student_logits, teacher_logits)
        total = self.alpha * soft + (1.0 - self.alpha) * hard
        return total, {"kd": float(soft.detach()), "ce": float(hard.detach())}
