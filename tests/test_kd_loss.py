"""KDLoss against values computed by hand: explicit softmax, log and sums, no F.kl_div."""

from __future__ import annotations

import math

import pytest
import torch

from edgekit.distill.losses import KDLoss

STUDENT = [[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]]
TEACHER = [[1.5, 1.0, -0.5], [-1.0, 0.0, 2.0]]
TARGETS = [0, 2]


def softmax(row: list[float], t: float = 1.0) -> list[float]:
    exps = [math.exp(v / t) for v in row]
    total = sum(exps)
    return [e / total for e in exps]


def kl_by_hand(student: list[list[float]], teacher: list[list[float]], t: float) -> float:
    """Mean over the batch of sum_c p_teacher * (log p_teacher - log p_student), at temperature t."""
    per_row = []
    for s_row, t_row in zip(student, teacher):
        p_s, p_t = softmax(s_row, t), softmax(t_row, t)
        per_row.append(sum(pt * (math.log(pt) - math.log(ps)) for ps, pt in zip(p_s, p_t)))
    return sum(per_row) / len(per_row)


def ce_by_hand(student: list[list[float]], targets: list[int]) -> float:
    return sum(-math.log(softmax(row)[y]) for row, y in zip(student, targets)) / len(targets)


def tensors() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return (torch.tensor(STUDENT, dtype=torch.float64), torch.tensor(TEACHER, dtype=torch.float64),
            torch.tensor(TARGETS))


def test_hand_values_are_what_they_claim() -> None:
    # A guard on the helpers themselves: identical distributions have zero KL, and a sure, correct
    # prediction has (almost) zero cross-entropy.
    assert kl_by_hand(STUDENT, STUDENT, 2.0) == pytest.approx(0.0, abs=1e-12)
    assert ce_by_hand([[50.0, 0.0, 0.0]], [0]) == pytest.approx(0.0, abs=1e-12)
    assert kl_by_hand(STUDENT, TEACHER, 1.0) > 0.01


@pytest.mark.parametrize("t", [1.0, 2.0, 4.0])
@pytest.mark.parametrize("alpha", [0.3, 0.7])
def test_total_matches_hand_computation(t: float, alpha: float) -> None:
    s, te, y = tensors()
    total, parts = KDLoss(temperature=t, alpha=alpha)(s, te, y)
    soft = t * t * kl_by_hand(STUDENT, TEACHER, t)
    hard = ce_by_hand(STUDENT, TARGETS)
    assert float(total) == pytest.approx(alpha * soft + (1 - alpha) * hard, rel=1e-9)
    assert parts["kd"] == pytest.approx(soft, rel=1e-6)
    assert parts["ce"] == pytest.approx(hard, rel=1e-6)


def test_soft_term_is_scaled_by_t_squared() -> None:
    s, te, _ = tensors()
    plain_kl = kl_by_hand(STUDENT, TEACHER, 2.0)  # KL of the T=2-softened distributions, unscaled
    soft = float(KDLoss(temperature=2.0, alpha=0.5).soft_term(s, te))
    assert soft == pytest.approx(4.0 * plain_kl, rel=1e-9)
    assert soft != pytest.approx(plain_kl, rel=1e-3)


def test_kl_direction_is_teacher_to_student() -> None:
    # KL(teacher || student) and KL(student || teacher) differ on these logits; the loss is the former.
    s, te, _ = tensors()
    forward = kl_by_hand(STUDENT, TEACHER, 1.0)
    reverse = kl_by_hand(TEACHER, STUDENT, 1.0)
    assert abs(forward - reverse) > 1e-3
    assert float(KDLoss(temperature=1.0).soft_term(s, te)) == pytest.approx(forward, rel=1e-9)


def test_alpha_zero_is_cross_entropy_alone() -> None:
    s, te, y = tensors()
    total, parts = KDLoss(temperature=4.0, alpha=0.0)(s, te, y)
    assert float(total) == pytest.approx(ce_by_hand(STUDENT, TARGETS), rel=1e-9)
    assert parts["ce"] == pytest.approx(ce_by_hand(STUDENT, TARGETS), rel=1e-6)


def test_alpha_one_is_the_soft_term_alone() -> None:
    s, te, y = tensors()
    total, _ = KDLoss(temperature=3.0, alpha=1.0)(s, te, y)
    assert float(total) == pytest.approx(9.0 * kl_by_hand(STUDENT, TEACHER, 3.0), rel=1e-9)
    # the labels play no part: other targets give the same loss
    other, _ = KDLoss(temperature=3.0, alpha=1.0)(s, te, torch.tensor([1, 1]))
    assert float(other) == pytest.approx(float(total), rel=1e-12)


def test_no_teacher_gives_cross_entropy() -> None:
    s, _, y = tensors()
    total, parts = KDLoss(temperature=4.0, alpha=0.7)(s, None, y)
    assert float(total) == pytest.approx(ce_by_hand(STUDENT, TARGETS), rel=1e-9)
    assert set(parts) == {"ce"}


def test_matching_teacher_leaves_only_the_hard_term() -> None:
    s, _, y = tensors()
    total, parts = KDLoss(temperature=4.0, alpha=0.7)(s, s.clone(), y)
    assert parts["kd"] == pytest.approx(0.0, abs=1e-12)
    assert float(total) == pytest.approx(0.3 * ce_by_hand(STUDENT, TARGETS), rel=1e-9)


def test_gradient_flows_to_the_student_only() -> None:
    s, te, y = tensors()
    s.requires_grad_(True)
    te.requires_grad_(False)
    total, _ = KDLoss(temperature=2.0, alpha=0.5)(s, te, y)
    total.backward()
    assert s.grad is not None and torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0
