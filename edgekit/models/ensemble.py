"""Several teachers as one: their logits averaged, or weighted (``teacher_weights``), per image."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch

from edgekit.errors import EdgekitError


class EnsembleTeacher(torch.nn.Module):
    """``sum_i w_i * logits_i`` with the weights normalised to sum to 1. Gives logits only (``opaque``)."""

    opaque = True

    def __init__(self, members: Sequence[torch.nn.Module], weights: Sequence[float] | None = None) -> None:
        super().__init__()
        if len(members) < 2:
            raise EdgekitError(f"an ensemble needs at least 2 teachers, got {len(members)}",
                               "pass --teacher twice (or leave --teacher out to train ensemble_size teachers)")
        weights = list(weights) if weights else [1.0] * len(members)
        if len(weights) != len(members):
            raise EdgekitError(f"{len(weights)} teacher_weights for {len(members)} teachers",
                               "give one weight per teacher, in the order of the --teacher flags")
        total = float(sum(weights))
        self.members = torch.nn.ModuleList(members)
        self.weights = [w / total for w in weights]
        self.training = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = None
        for weight, member in zip(self.weights, self.members):
            logits = weight * member(x)
            out = logits if out is None else out + logits
        return out

    def train(self, mode: bool = True) -> EnsembleTeacher:
        return self  # frozen

    def digest(self) -> str:
        from edgekit.models.digest import model_digest

        h = hashlib.sha256(repr(self.weights).encode())
        for member in self.members:
            h.update(model_digest(member).encode())
        return h.hexdigest()
