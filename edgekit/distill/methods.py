"""The loss a ``--method`` builds between two models (the method text itself: method_spec.py)."""

from __future__ import annotations

import torch

from edgekit.distill.feature_losses import AttentionTransfer, FitNet
from edgekit.distill.hooks import FeatureTap, stride_layers
from edgekit.distill.losses import DKD, KD, DistillLoss, LossTerm
from edgekit.distill.method_spec import Method
from edgekit.distill.relational import RKD
from edgekit.errors import EdgekitError


@torch.no_grad()
def feature_shapes(model: torch.nn.Module, layers: list[str], size: int, role: str) -> list[tuple[int, ...]]:
    """Output shape of each named layer for one image of ``size`` pixels."""
    was_training = model.training
    model.eval()
    try:
        with FeatureTap(model, layers, role) as tap:
            captured = tap.run(torch.zeros(1, 3, size, size)).features
    finally:
        model.train(was_training)
    shapes = []
    for path in layers:
        value = captured.get(path)
        if not isinstance(value, torch.Tensor) or value.dim() != 4:
            raise EdgekitError(f"the {role} layer '{path}' does not output a feature map (N, C, H, W)",
                               "name a convolutional block, e.g. layer2 or features.6")
        shapes.append(tuple(value.shape))
    return shapes


def layer_pairs(student: torch.nn.Module, teacher: torch.nn.Module, size: int, student_layers: list[str],
                teacher_layers: list[str]) -> tuple[list[str], list[str]]:
    """The layers that feature terms compare: the ones named, else the ends of the stride-4/8/16 stages."""
    if teacher is None or getattr(teacher, "opaque", False):
        raise EdgekitError("feature methods (fitnet, at, rkd) need the teacher's inner layers, and this teacher "
                           "gives logits only (an ONNX or exported-program file, or an ensemble)",
                           "use kd or dkd, or give the teacher as .safetensors with --teacher-arch")
    s_layers = list(student_layers) or stride_layers(student, size)
    t_layers = list(teacher_layers) or stride_layers(teacher, size)
    if len(s_layers) != len(t_layers):
        raise EdgekitError(f"{len(t_layers)} teacher layers but {len(s_layers)} student layers",
                           "name as many teacher_layers as student_layers; they pair up in order")
    return s_layers, t_layers


def build_loss(method: Method, student: torch.nn.Module, teacher: torch.nn.Module | None, size: int, *,
               temperature: float, alpha: float, student_layers: list[str] = (),
               teacher_layers: list[str] = ()) -> DistillLoss:
    """The weighted loss of ``method`` between these two models (shapes probed at ``size``)."""
    terms: list[tuple[float, LossTerm]] = []
    pairs: tuple[list[str], list[str]] | None = None
    for name, weight in method.terms:
        if name == "kd":
            terms.append((weight, KD(temperature)))
        elif name == "dkd":
            terms.append((weight, DKD(temperature)))
        elif name == "rkd":
            if getattr(teacher, "opaque", False):
                layer_pairs(student, teacher, size, [], [])  # raises: an opaque teacher has no embedding
            terms.append((weight, RKD()))
        else:
            if pairs is None:
                pairs = layer_pairs(student, teacher, size, list(student_layers), list(teacher_layers))
            s_layers, t_layers = pairs
            s_shapes = feature_shapes(student, s_layers, size, "student")
            t_shapes = feature_shapes(teacher, t_layers, size, "teacher")
            if name == "fitnet":
                terms.append((weight, FitNet(s_layers[-1], t_layers[-1], s_shapes[-1], t_shapes[-1])))
            else:
                terms.append((weight, AttentionTransfer(s_layers, t_layers, [s[-1] for s in s_shapes],
                                                        [t[-1] for t in t_shapes])))
    return DistillLoss(terms, alpha)
