"""Teacher assistants for progressive distillation (Mirzadeh et al., "TAKD", AAAI 2020).

A large gap between teacher and student hurts distillation; models of intermediate size bridge it.
The assistants are the student's own architecture at wider widths, chosen so that the parameter
counts of teacher, assistants and student fall on a geometric progression.
"""

from __future__ import annotations

import math

import torch

from edgekit.errors import EdgekitError
from edgekit.models.builders import build_model, student_spec

WIDTH_STEP = 0.05


def count_params(arch: str, width: float, classes: int) -> int:
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        return sum(p.numel() for p in build_model(student_spec(arch, width, classes)).parameters())


def assistant_widths(teacher_params: int, arch: str, width: float, classes: int, count: int) -> list[float]:
    """Widths of ``count`` assistants, widest first, between the teacher's size and the student's."""
    student_params = count_params(arch, width, classes)
    if teacher_params <= student_params:
        raise EdgekitError(f"--method progressive needs a teacher larger than the student "
                           f"({teacher_params:,} vs {student_params:,} parameters)", "use kd, or a larger teacher")
    ratio = math.log(teacher_params / student_params)
    candidates = [round(width + WIDTH_STEP * i, 2) for i in range(1, int(4.0 / WIDTH_STEP))]
    sizes: dict[float, float] = {}

    def log_size(w: float) -> float:
        if w not in sizes:
            sizes[w] = math.log(count_params(arch, w, classes))
        return sizes[w]

    widths = []
    for i in range(count, 0, -1):
        goal = math.log(student_params) + ratio * i / (count + 1)
        lo, hi = 0, len(candidates) - 1  # parameters grow with width: bisect for the first width at or above the goal
        while lo < hi:
            mid = (lo + hi) // 2
            lo, hi = (mid + 1, hi) if log_size(candidates[mid]) < goal else (lo, mid)
        near = [candidates[j] for j in (lo - 1, lo) if j >= 0]
        widths.append(min(near, key=lambda w: abs(log_size(w) - goal)))
    return widths
