"""``--method``: which distillation to run, parsed from a short text, and the loss it builds.

The text is ``+``-joined parts, each a loss term with an optional weight (``kd``, ``at:0.5``) or one
teacher strategy:

- terms: ``kd`` (Hinton), ``dkd`` (decoupled KD), ``fitnet`` (hint layer + learned 1x1 adapter),
  ``at`` (attention transfer), ``rkd`` (relational: distance and angle);
- strategies: ``ensemble`` (several teachers, logits averaged or weighted), ``progressive`` (teacher ->
  assistants -> student), ``self`` (born-again: the student learns from its own earlier generation).

A strategy without terms uses ``kd``; ``ensemble+dkd`` or ``kd+at`` combine. Terms add up as
``alpha * sum(weight * term) + (1 - alpha) * CE`` (losses.py).
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass

import torch

from edgekit.distill.feature_losses import AttentionTransfer, FitNet
from edgekit.distill.hooks import FeatureTap, stride_layers
from edgekit.distill.losses import DKD, KD, DistillLoss, LossTerm
from edgekit.distill.relational import RKD
from edgekit.errors import EdgekitError

TERMS = ("kd", "dkd", "fitnet", "at", "rkd")
STRATEGIES = ("ensemble", "progressive", "self")
FEATURE_TERMS = ("fitnet", "at")


@dataclass(frozen=True)
class Method:
    strategy: str | None
    terms: tuple[tuple[str, float], ...]

    @property
    def needs_features(self) -> bool:
        return any(name in FEATURE_TERMS or name == "rkd" for name, _ in self.terms)


def parse_method(text: str) -> Method:
    """``"ensemble+dkd"`` -> Method("ensemble", (("dkd", 1.0),)); every mistake names itself and the fix."""
    strategy: str | None = None
    terms: list[tuple[str, float]] = []
    for raw in text.split("+"):
        name, _, weight_text = raw.strip().partition(":")
        name = name.strip().lower()
        if name in STRATEGIES:
            if strategy is not None:
                raise EdgekitError(f"--method '{text}' names two strategies ({strategy}, {name})",
                                   "pick one of ensemble, progressive, self")
            if weight_text:
                raise EdgekitError(f"--method '{text}': the strategy {name} takes no weight", f"write {name} alone")
            strategy = name
            continue
        if name not in TERMS:
            if name in ("qat", "ptq"):
                raise EdgekitError(f"--method '{name}' is a quantization method", f"pass --quant-method {name}")
            close = difflib.get_close_matches(name, TERMS + STRATEGIES, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"choose from {', '.join(TERMS + STRATEGIES)}"
            raise EdgekitError(f"unknown distillation method '{name}' in --method '{text}'", hint)
        weight = _weight(weight_text, name, text)
        if name in (n for n, _ in terms):
            raise EdgekitError(f"--method '{text}' names {name} twice", "give each term once, with one weight")
        terms.append((name, weight))
    return Method(strategy, tuple(terms) or (("kd", 1.0),))


def _weight(text: str, name: str, method: str) -> float:
    if not text:
        return 1.0
    try:
        weight = float(text)
    except ValueError:
        weight = math.nan
    if not (math.isfinite(weight) and weight > 0):
        raise EdgekitError(f"--method '{method}': the weight of {name} must be a positive number, got '{text}'",
                           f"write e.g. {name}:0.5")
    return weight


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
