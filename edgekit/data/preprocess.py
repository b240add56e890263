"""The one preprocessing recipe, shared by our own evaluation and by any app that feeds the artifacts.

From an 8-bit image: convert to RGB, resize to ``size`` with bilinear interpolation (Pillow), multiply
by ``scale``, subtract ``mean``, divide by ``std``, lay out as NCHW (PyTorch, ONNX) or NHWC (TFLite).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

PIXEL_SCALE = 1.0 / 255.0


@dataclass(frozen=True)
class PreprocessSpec:
    size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    scale: float = PIXEL_SCALE
    color: str = "RGB"
    interpolation: str = "bilinear"

    def to_dict(self) -> dict:
        return {"color": self.color, "size": list(self.size), "interpolation": self.interpolation,
                "scale": self.scale, "mean": list(self.mean), "std": list(self.std)}

    def resize(self, image: Image.Image) -> np.ndarray:
        """An image of any mode and size -> uint8 HxWx3 array at ``size``."""
        image = image.convert(self.color)
        height, width = self.size
        if image.size != (width, height):
            image = image.resize((width, height), Image.Resampling.BILINEAR)
        return np.asarray(image, dtype=np.uint8)

    def normalize(self, images_u8: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 NHWC -> float32 NCHW, scaled and standardised."""
        # converted to float by numpy: a decoded image's array is read-only, and torch warns about wrapping one
        x = torch.from_numpy(np.asarray(images_u8, dtype=np.float32)) * self.scale
        x = (x - torch.tensor(self.mean)) / torch.tensor(self.std)
        return x.permute(0, 3, 1, 2).contiguous()


def quantize_input(x: np.ndarray, scale: float, zero_point: int, dtype: np.dtype) -> np.ndarray:
    """Float input -> integer tensor with the artifact's input scale and zero point."""
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(dtype)


def dequantize_output(y: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return (y.astype(np.float32) - zero_point) * scale


def preprocess_spec(settings: Any) -> PreprocessSpec:
    """The recipe the settings (``size``, ``mean``, ``std``) describe."""
    return PreprocessSpec(size=(settings.size, settings.size), mean=tuple(settings.mean), std=tuple(settings.std))
