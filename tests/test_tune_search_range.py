"""Every corner of `edgekit tune`'s search range trains: each method it searches, at the lowest and highest
T and alpha it can propose, runs eight real optimizer steps (the product's loss, training loop, optimizer,
default learning rate and NaN stop) on tiny random images, with a finite loss and finite gradients that do
not blow up.

The student is a small net with MobileNet's kind of head (a wide 1x1 convolution, batch norm and ReLU6
before pooling and the classifier): the width of the features the classifier reads sets how stiff a loss
on the logits is for SGD, and a narrow toy head hid the fault. DKD with the paper's CIFAR-100 weights
(TCKD 1, NCKD 8) failed here: at T 10 and alpha 0.95 its loss grew from 0.12 to 360 within five
steps, where KD's stayed near 0.16; on the digits the same growth ended a tune trial in NaN."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from edgekit.config import Settings
from edgekit.distill.losses import DistillLoss
from edgekit.distill.method_spec import parse_method
from edgekit.distill.methods import build_loss
from edgekit.distill.train_loop import train
from edgekit.tune import ALPHA_RANGE, DEFAULT_METHODS, T_RANGE

CLASSES, SIZE = 10, 8
CORNERS = list(itertools.product(DEFAULT_METHODS, T_RANGE, ALPHA_RANGE))


class Recording(DistillLoss):
    """The method's loss, remembering each step's total and the gradient that reached the student's logits."""

    def __init__(self, loss: DistillLoss) -> None:
        super().__init__(loss.terms, loss.alpha)
        self.totals: list[float] = []
        self.gradients: list[float] = []

    def __call__(self, student_out, teacher_out, targets):  # noqa: ANN001, ANN204
        total, parts = super().__call__(student_out, teacher_out, targets)
        logits = student_out.logits if hasattr(student_out, "logits") else student_out
        logits.register_hook(lambda g: self.gradients.append(float(g.norm())))
        self.totals.append(float(total.detach()))
        return total, parts


class Student(torch.nn.Module):
    """Stem and block (the layers feature methods pair up), then a MobileNet-like wide head."""

    def __init__(self, wide: int = 640) -> None:
        super().__init__()
        self.stem = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, 2, 1), torch.nn.BatchNorm2d(8), torch.nn.ReLU())
        self.block = torch.nn.Sequential(torch.nn.Conv2d(8, 16, 3, 2, 1), torch.nn.BatchNorm2d(16), torch.nn.ReLU())
        self.last = torch.nn.Sequential(torch.nn.Conv2d(16, wide, 1), torch.nn.BatchNorm2d(wide), torch.nn.ReLU6())
        self.head = torch.nn.Linear(wide, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.last(self.block(self.stem(x))).mean((2, 3)))


@pytest.fixture(scope="module")
def setup() -> tuple[torch.Tensor, torch.Tensor, torch.nn.Module]:
    torch.manual_seed(0)
    teacher = Student().eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return torch.rand(64, 3, SIZE, SIZE), torch.arange(64) % CLASSES, teacher


def test_the_corners_are_what_tune_searches() -> None:
    assert len(CORNERS) == len(DEFAULT_METHODS) * 4 and {"kd", "dkd"} <= set(DEFAULT_METHODS)
    assert T_RANGE[0] < T_RANGE[1] and ALPHA_RANGE[0] < ALPHA_RANGE[1]


@pytest.mark.parametrize(("method", "temperature", "alpha"), CORNERS)
def test_every_corner_of_the_search_range_trains(setup, method: str, temperature: float, alpha: float) -> None:
    x, y, teacher = setup
    torch.manual_seed(1)
    student = Student().train()
    loss = Recording(build_loss(parse_method(method), student, teacher, SIZE, temperature=temperature, alpha=alpha,
                                student_layers=["stem", "block"], teacher_layers=["stem", "block"]))
    # 2 epochs of 4 steps at the default learning rate; the loop stops with an EdgekitError on a non-finite loss
    train(student, x, y, loss_fn=loss, teacher=teacher, epochs=2, lr=Settings().distill_lr, batch_size=16, seed=0,
          stage="distill")
    assert len(loss.totals) == len(loss.gradients) == 8
    assert all(math.isfinite(v) for v in loss.totals + loss.gradients)
    assert all(torch.isfinite(p).all() for p in student.parameters())
    # no blow-up: a diverging loss grows by orders of magnitude within these steps; a training one stays near
    # where it started (the largest start here is cross-entropy's, ln 10)
    assert max(loss.totals) < 10 * max(loss.totals[0], math.log(CLASSES)), loss.totals
