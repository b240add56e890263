"""The one preprocessing recipe, shared by our own evaluation and by any app that feeds the artifacts.

From an 8-bit image: convert to RGB, resize to ``size`` with bilinear interpolation (Pillow), multiply
by ``scale``, subtract ``mean``, divide by ``std``, lay out as NCHW (PyTorch, ONNX) or NHWC (TFLite).

A classifier's image is stretched to the square; a detector's is letterboxed (``resize = "letterbox"``): scaled to
fit with its aspect ratio kept, centred on a grey (114) border, as Ultralytics does, so objects keep their shape
and boxes map back to the original pixels by one scale and one offset (``letterbox_fit``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

PIXEL_SCALE = 1.0 / 255.0
LETTERBOX_PAD = 114  # Ultralytics' border grey


# How an app reproduces letterbox_fit/letterbox_image (preprocess.json says it in words, as Ultralytics does it)
LETTERBOX_RECIPE = ("r = min(H / h, W / w) for an h x w image and the H x W input; resize (interpolation) to "
                    "round(w * r) x round(h * r); paste at left (W - new_w) // 2, top (H - new_h) // 2 on pad_value; "
                    "a box maps back as ((x - left) / r, (y - top) / r), clipped to the image")


def letterbox_fit(height: int, width: int, size: tuple[int, int]) -> tuple[float, int, int, int, int]:
    """Scale r, the scaled image's (new_h, new_w), and its offset (left, top) inside a ``size`` (h, w) letterbox."""
    r = min(size[0] / height, size[1] / width)
    new_h, new_w = max(1, round(height * r)), max(1, round(width * r))
    return r, new_h, new_w, (size[1] - new_w) // 2, (size[0] - new_h) // 2


def letterbox_boxes(boxes: np.ndarray, height: int, width: int, size: tuple[int, int]) -> np.ndarray:
    """Boxes xyxy in an image's pixels -> in its ``size`` letterbox's pixels."""
    r, _, _, left, top = letterbox_fit(height, width, size)
    return (np.asarray(boxes, dtype=np.float32).reshape(-1, 4) * r + np.array([left, top, left, top], np.float32))


def unletterbox_boxes(boxes: np.ndarray, height: int, width: int, size: tuple[int, int]) -> np.ndarray:
    """Boxes xyxy [K, 4] in a letterbox's pixels -> in the original image's, clipped to it."""
    r, _, _, left, top = letterbox_fit(height, width, size)
    out = (np.asarray(boxes, dtype=np.float32).reshape(-1, 4) - np.array([left, top, left, top], np.float32)) / r
    out[:, 0::2] = out[:, 0::2].clip(0, width)
    out[:, 1::2] = out[:, 1::2].clip(0, height)
    return out


def letterbox_image(image: Image.Image, size: tuple[int, int], pad: int = LETTERBOX_PAD) -> np.ndarray:
    """An RGB image letterboxed into ``size`` (h, w): uint8 HxWx3."""
    _, new_h, new_w, left, top = letterbox_fit(image.height, image.width, size)
    canvas = Image.new("RGB", (size[1], size[0]), (pad, pad, pad))
    scaled = image if image.size == (new_w, new_h) else image.resize((new_w, new_h), Image.Resampling.BILINEAR)
    canvas.paste(scaled, (left, top))
    return np.asarray(canvas, dtype=np.uint8)


@dataclass(frozen=True)
class PreprocessSpec:
    size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    scale: float = PIXEL_SCALE
    color: str = "RGB"
    interpolation: str = "bilinear"
    resize_mode: str = "stretch"  # or "letterbox" (detection)

    def to_dict(self) -> dict:
        letterbox = {"resize": "letterbox", "pad_value": LETTERBOX_PAD, "letterbox": LETTERBOX_RECIPE} \
            if self.resize_mode == "letterbox" else {}
        return {"color": self.color, "size": list(self.size), "interpolation": self.interpolation,
                "scale": self.scale, "mean": list(self.mean), "std": list(self.std), **letterbox}

    def resize(self, image: Image.Image) -> np.ndarray:
        """An image of any mode and size -> uint8 HxWx3 array at ``size``."""
        image = image.convert(self.color)
        if self.resize_mode == "letterbox":
            return letterbox_image(image, self.size)
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


def preprocess_spec(settings: Any, resize_mode: str = "stretch") -> PreprocessSpec:
    """The recipe the settings (``size``, ``mean``, ``std``) describe; the task says how images are resized."""
    return PreprocessSpec(size=(settings.size, settings.size), mean=tuple(settings.mean), std=tuple(settings.std),
                          resize_mode=resize_mode)
