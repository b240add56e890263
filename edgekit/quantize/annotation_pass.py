"""A quantizer whose annotation is followed by one of edgekit's own passes over the annotated graph."""

from __future__ import annotations

from collections.abc import Callable

from torch.fx import GraphModule


def after_annotation(quantizer, annotation_pass: Callable[[GraphModule], object]):  # noqa: ANN001, ANN201 - torchao's Quantizer is private API
    """``quantizer``, with ``annotation_pass(model)`` run on the graph each time it has annotated it."""
    from torchao.quantization.pt2e.quantizer import Quantizer

    class _Amended(Quantizer):
        def transform_for_annotation(self, model: GraphModule) -> GraphModule:
            return quantizer.transform_for_annotation(model)

        def annotate(self, model: GraphModule) -> GraphModule:
            model = quantizer.annotate(model)
            annotation_pass(model)
            return model

        def validate(self, model: GraphModule) -> None:
            quantizer.validate(model)

    return _Amended()
