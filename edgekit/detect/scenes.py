"""The built-in detection data: generated scenes, deterministic from a seed, no download.

Each image is a textured background (a colour gradient, low-frequency waves and stripes) with one to four
shapes — circles, squares and triangles of random colour, size and (for triangles) rotation — that may
overlap a little. Boxes are the shapes' tight pixel boxes, ``[x0, y0, x1, y1]`` in the image's pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("circle", "square", "triangle")
SPLITS = {"train": 1200, "val": 150, "test": 300}
MAX_OVERLAP_IOU = 0.3


@dataclass(frozen=True)
class Scene:
    image: np.ndarray          # H x W x 3 uint8, RGB
    boxes: np.ndarray          # N x 4 float32, [x0, y0, x1, y1] pixels
    labels: np.ndarray         # N int64, index into CLASSES


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    base = rng.uniform(60, 190, 3)
    tilt = rng.uniform(-50, 50, (2, 3))
    img = base + x[..., None] * tilt[0] + y[..., None] * tilt[1]
    for _ in range(3):  # low-frequency waves: texture that is not an object
        fx, fy, phase = rng.uniform(1, 6), rng.uniform(1, 6), rng.uniform(0, 2 * math.pi)
        img += rng.uniform(5, 20) * np.sin(2 * math.pi * (fx * x + fy * y) + phase)[..., None] * rng.uniform(0.5, 1, 3)
    if rng.random() < 0.5:  # stripes
        period = rng.uniform(4, 12)
        stripes = (np.sin(2 * math.pi * (x if rng.random() < 0.5 else y) * size / period) > 0).astype(np.float32)
        img += rng.uniform(8, 25) * stripes[..., None]
    img += rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _shape(draw: ImageDraw.ImageDraw, label: int, cx: float, cy: float, r: float, colour: tuple[int, int, int],
           rng: np.random.Generator) -> np.ndarray:
    """Draw one shape; return its tight box."""
    if CLASSES[label] == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
        return np.array([cx - r, cy - r, cx + r, cy + r])
    if CLASSES[label] == "square":
        draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=colour)
        return np.array([cx - r, cy - r, cx + r, cy + r])
    angle = rng.uniform(0, 2 * math.pi)
    points = [(cx + r * math.cos(angle + k * 2 * math.pi / 3), cy + r * math.sin(angle + k * 2 * math.pi / 3)) for k in range(3)]
    draw.polygon(points, fill=colour)
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return np.array([min(xs), min(ys), max(xs), max(ys)])


def make_scene(seed: int, size: int = 96) -> Scene:
    rng = np.random.default_rng(seed)
    image = Image.fromarray(_background(rng, size))
    draw = ImageDraw.Draw(image)
    boxes: list[np.ndarray] = []
    labels: list[int] = []
    for _ in range(int(rng.integers(1, 5))):
        for _attempt in range(20):
            r = rng.uniform(0.07, 0.2) * size
            cx, cy = rng.uniform(r, size - r), rng.uniform(r, size - r)
            label = int(rng.integers(len(CLASSES)))
            probe = np.array([cx - r, cy - r, cx + r, cy + r])
            if all(_iou(probe, b) <= MAX_OVERLAP_IOU for b in boxes):
                colour = tuple(int(c) for c in rng.integers(0, 256, 3))
                if max(colour) - min(colour) < 80:  # keep shapes saturated enough to stand out from the background
                    colour = (colour[0], colour[1], 255 - colour[1])
                boxes.append(np.clip(_shape(draw, label, cx, cy, r, colour, rng), 0, size))
                labels.append(label)
                break
    return Scene(np.asarray(image), np.array(boxes, dtype=np.float32).reshape(-1, 4), np.array(labels, dtype=np.int64))


def split_seed(split: str, index: int, seed: int) -> int:
    """Disjoint, fixed seeds per split: the test scenes never depend on how many training scenes there are."""
    return {"train": 0, "val": 10_000_000, "test": 20_000_000}[split] + seed * 1_000_003 + index
