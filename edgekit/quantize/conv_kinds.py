"""torchao's QAT conv-BatchNorm passes, run only for the convolution kinds the graph has.

``prepare_qat_pt2e`` and ``convert_pt2e`` rewrite conv-BN pairs for four convolution functions (conv1d, conv2d,
conv_transpose1d, conv_transpose2d), and trace their patterns with ``torch.export`` for each kind whether the graph
holds one or not: converting the digits student traced 96 patterns, 30 of its 38 s, 72 of them for kinds that a
MobileNet or a TinyDetector never has. A pass for a kind the graph lacks matches nothing, so skipping it leaves the
graph as it was (tests/test_conv_kinds.py compares both graphs).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch

_HELPERS = ("_fuse_conv_bn_qat_helper", "_fold_conv_bn_qat_helper")


def has_conv_kind(graph_module: torch.fx.GraphModule, conv_fn: Callable[..., Any]) -> bool:
    """Whether the graph calls the aten op of ``conv_fn`` (``F.conv2d`` -> ``aten.conv2d.*``)."""
    kind = conv_fn.__name__
    return any(node.op == "call_function" and str(getattr(node.target, "__name__", "")).split(".")[0] == kind
               for node in graph_module.graph.nodes)


def _only_present(helper: Callable[..., torch.fx.GraphModule]) -> Callable[..., torch.fx.GraphModule]:
    def run(m: torch.fx.GraphModule, conv_fn: Callable[..., Any], *args: Any, **kwargs: Any) -> torch.fx.GraphModule:
        return helper(m, conv_fn, *args, **kwargs) if has_conv_kind(m, conv_fn) else m
    return run


@contextlib.contextmanager
def present_conv_kinds_only() -> Iterator[None]:
    """Within the block, torchao's conv-BN QAT passes skip the convolution kinds the graph does not contain."""
    from torchao.quantization.pt2e import qat_utils

    originals = {name: getattr(qat_utils, name) for name in _HELPERS}
    try:
        for name, helper in originals.items():
            setattr(qat_utils, name, _only_present(helper))
        yield
    finally:
        for name, helper in originals.items():
            setattr(qat_utils, name, helper)
