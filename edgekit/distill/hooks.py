"""Features by module path: forward hooks that record what named modules output during a forward pass.

In the spirit of torchdistill: a loss names the layers it reads (``layer2``, ``features.6``), a
:class:`FeatureTap` hooks them, and one forward pass yields :class:`Outputs`, the logits plus those
features. ``EMBEDDING`` is the input of the model's last linear layer (the pooled penultimate
features), captured with a pre-hook, for losses that compare embeddings (RKD).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

import torch

from edgekit.errors import EdgekitError

EMBEDDING = "embedding"


@dataclass
class Outputs:
    """What a loss sees of a model: its logits and the features captured at named paths."""

    logits: torch.Tensor
    features: dict[str, torch.Tensor] = field(default_factory=dict)


def as_outputs(value: torch.Tensor | Outputs | None) -> Outputs | None:
    """Losses accept bare logits too (a teacher that offers nothing else, the older call shape)."""
    if value is None or isinstance(value, Outputs):
        return value
    return Outputs(logits=value)


def last_linear_path(model: torch.nn.Module) -> str:
    """Path of the last ``nn.Linear`` (the classifier): its input is the embedding."""
    names = [name for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)]
    if not names:
        raise EdgekitError(f"{type(model).__name__} has no linear classifier layer to take an embedding from",
                           "use a method that needs no embedding (kd, dkd, at, fitnet)")
    return names[-1]


def resolve_module(model: torch.nn.Module, path: str, role: str) -> torch.nn.Module:
    """The submodule at ``path``; an unknown path is a user error that suggests the nearest real one."""
    modules = dict(model.named_modules())
    if path in modules and path:
        return modules[path]
    close = difflib.get_close_matches(path, [n for n in modules if n], n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"module paths look like {', '.join(list(modules)[1:4])}"
    raise EdgekitError(f"the {role} has no module at path '{path}'", hint)


class FeatureTap:
    """Forward hooks at named module paths; ``run(x)`` returns the logits and the captured features.

    Use as a context manager (hooks are removed on exit) or call :meth:`close`. A path captured twice
    in one forward pass keeps the last output.
    """

    def __init__(self, model: torch.nn.Module, paths: list[str], role: str, embedding: bool = False,
                 call: Any = None) -> None:
        self.model = model
        self.call = call if call is not None else model  # e.g. the DistributedDataParallel wrapper of model
        self.captured: dict[str, torch.Tensor] = {}
        self.handles: list[Any] = []
        for path in dict.fromkeys(paths):
            module = resolve_module(model, path, role)
            self.handles.append(module.register_forward_hook(self._keep(path)))
        if embedding:
            classifier = resolve_module(model, last_linear_path(model), role)
            self.handles.append(classifier.register_forward_pre_hook(self._keep_input(EMBEDDING)))

    def _keep(self, path: str):  # noqa: ANN202 - a hook closure
        def hook(_module: torch.nn.Module, _inputs: Any, output: Any) -> None:
            self.captured[path] = output

        return hook

    def _keep_input(self, key: str):  # noqa: ANN202
        def hook(_module: torch.nn.Module, inputs: tuple[Any, ...]) -> None:
            self.captured[key] = inputs[0].flatten(1)

        return hook

    def run(self, x: torch.Tensor) -> Outputs:
        self.captured = {}
        logits = self.call(x)
        return Outputs(logits=logits, features=self.captured)

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []

    def __enter__(self) -> FeatureTap:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


@torch.no_grad()
def stride_layers(model: torch.nn.Module, size: int, strides: tuple[int, ...] = (4, 8, 16)) -> list[str]:
    """Default feature layers: for each stride, the last shallow module (path with at most one dot) whose
    output is a feature map ``size / stride`` pixels wide (rounded up), in the order the forward pass runs them.

    For torchvision's ResNets this gives ``layer1, layer2, layer3``; for MobileNetV2 ``features.3, features.6,
    features.13``: the ends of the stages, so teacher and student layers pair up by resolution.
    """
    order: list[tuple[str, int]] = []
    handles = []
    for name, module in model.named_modules():
        if name and name.count(".") <= 1:
            handles.append(module.register_forward_hook(
                lambda _m, _i, out, name=name: order.append((name, out.shape[-1]))
                if isinstance(out, torch.Tensor) and out.dim() == 4 else None))
    was_training = model.training
    try:
        model.eval()
        model(torch.zeros(1, 3, size, size))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    picked = []
    for stride in strides:
        width = size
        for _ in range(stride.bit_length() - 1):  # a stride-2 layer (kernel 3, padding 1) rounds up
            width = -(-width // 2)
        matches = [name for name, w in order if w == width]
        if not matches:
            raise EdgekitError(f"{type(model).__name__} has no feature map of {width}x{width} at input size {size}",
                               "name the layers with teacher_layers and student_layers")
        picked.append(matches[-1])
    return picked
