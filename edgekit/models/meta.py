"""What an app needs to feed a model, carried beside its weights (in the spirit of timm's default_cfg)."""

from __future__ import annotations

from typing import Any

from edgekit.data.dataset import ImageData
from edgekit.data.preprocess import PreprocessSpec


def model_meta(spec: PreprocessSpec, data: ImageData) -> dict[str, Any]:
    return {"preprocess": spec.to_dict(), "classes": list(data.classes), "layout": "NCHW"}
