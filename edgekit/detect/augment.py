"""Detection augmentation, drawn per epoch and seeded: mosaic, scale jitter, horizontal flip, colour.

Every draw of an epoch is made for all images at once from one generator seeded by (augment seed, epoch), so an
image's view depends on the seed, the epoch and the image alone, not on the batch it lands in (as classification's
views, distill/train_loop.epoch_plan). The images arrive letterboxed to the input size S and normalised; boxes
are xyxy in those pixels. In the spirit of Ultralytics' defaults, milder for short trainings of small objects:

- mosaic (half the images while it is on): the image and three others at their own scale on a 2S x 2S canvas,
  an S x S window cut around a random centre; off for the last fifth of the epochs (Ultralytics'
  ``close_mosaic``), so training ends on whole images as they are deployed;
- scale jitter: zoomed by a factor in [0.75, 1.33] (log-uniform) about a random point: out, onto the letterbox
  grey; in, a window of it;
- horizontal flip (half the images);
- colour: brightness and contrast x [0.75, 1.25], saturation x [0.6, 1.4], in pixel space.

A box keeps its label while at least a quarter of its area and 2 px of each side stay in view; the rest are
dropped (an object cut to a sliver is not one the detector should be asked to find).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

VIEW_SEEDS = 7 * 10**13   # apart from the order generators and classification's view generators
MOSAIC_P = 0.5
CLOSE_MOSAIC = 0.2        # the last fifth of the epochs trains without mosaic
SCALE = (0.75, 4 / 3)
BRIGHTNESS = CONTRAST = 0.25
SATURATION = 0.4
KEEP_AREA = 0.25
MIN_SIDE = 2.0


@dataclass
class EpochViews:
    """One epoch's draws, one row per image."""

    mosaic: torch.Tensor     # [n] bool
    partners: torch.Tensor   # [n, 3] the other images of a mosaic
    centre: torch.Tensor     # [n, 2] the mosaic window's centre, in [0.5, 1.5] x S
    scale: torch.Tensor      # [n] zoom factor
    anchor: torch.Tensor     # [n, 2] in [0, 1]: where the zoom is centred
    flip: torch.Tensor       # [n] bool
    colour: torch.Tensor     # [n, 3] brightness, contrast, saturation factors


def draw_views(n: int, augment_seed: int, epoch: int, epochs: int, hflip: bool = True) -> EpochViews:
    g = torch.Generator().manual_seed(VIEW_SEEDS + augment_seed * 1000 + epoch)
    mosaic_on = n >= 4 and epoch < epochs - max(1, round(CLOSE_MOSAIC * epochs))
    mosaic = (torch.rand(n, generator=g) < MOSAIC_P) & mosaic_on
    partners = torch.randint(0, max(n, 1), (n, 3), generator=g)
    centre = 0.5 + torch.rand(n, 2, generator=g)
    low, high = math.log(SCALE[0]), math.log(SCALE[1])
    scale = torch.exp(low + (high - low) * torch.rand(n, generator=g))
    anchor = torch.rand(n, 2, generator=g)
    flip = (torch.rand(n, generator=g) < 0.5) & hflip
    spread = torch.tensor([BRIGHTNESS, CONTRAST, SATURATION])
    colour = 1 + spread * (2 * torch.rand(n, 3, generator=g) - 1)
    return EpochViews(mosaic, partners, centre, scale, anchor, flip, colour)


def _kept(boxes: np.ndarray, labels: np.ndarray, visible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boxes cut to ``visible`` (their clipped coordinates), keeping those with enough of them left."""
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    w, h = visible[:, 2] - visible[:, 0], visible[:, 3] - visible[:, 1]
    keep = (w >= MIN_SIDE) & (h >= MIN_SIDE) & (w * h >= KEEP_AREA * np.maximum(area, 1e-9))
    return visible[keep].astype(np.float32), labels[keep]


def _clip(boxes: np.ndarray, size: int) -> np.ndarray:
    return np.clip(boxes, 0, size)


def mosaic(x: torch.Tensor, boxes: list[np.ndarray], labels: list[np.ndarray], tiles: list[int],
           centre: tuple[float, float], pad: torch.Tensor) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Four images (indices ``tiles``) in the quadrants of a 2S canvas; the S x S window centred on
    ``centre`` (fractions of S) with the boxes that stay in it."""
    size = x.shape[-1]
    canvas = pad.view(3, 1, 1).expand(3, 2 * size, 2 * size).clone()
    all_boxes, all_labels = [], []
    for (qy, qx), i in zip(((0, 0), (0, 1), (1, 0), (1, 1)), tiles):
        canvas[:, qy * size:(qy + 1) * size, qx * size:(qx + 1) * size] = x[i]
        all_boxes.append(boxes[i] + np.array([qx, qy, qx, qy], np.float32) * size)
        all_labels.append(labels[i])
    x0 = int(round(centre[0] * size - size / 2))
    y0 = int(round(centre[1] * size - size / 2))
    view = canvas[:, y0:y0 + size, x0:x0 + size]
    moved = np.concatenate(all_boxes).reshape(-1, 4) - np.array([x0, y0, x0, y0], np.float32)
    b, lab = _kept(moved, np.concatenate(all_labels), _clip(moved, size))
    return view, b, lab


def zoom(image: torch.Tensor, boxes: np.ndarray, labels: np.ndarray, factor: float, anchor: tuple[float, float],
         pad: torch.Tensor) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """The image scaled by ``factor`` and placed so that the point at ``anchor`` (fractions of its size) stays
    put: zooming out leaves a grey border, zooming in cuts a window."""
    size = image.shape[-1]
    new = max(1, int(round(size * factor)))
    scaled = F.interpolate(image[None], size=(new, new), mode="bilinear", align_corners=False)[0]
    # top-left of the scaled image in the output, so that anchor * size maps to itself
    ox, oy = (int(round(a * size * (1 - factor))) for a in anchor)
    out = pad.view(3, 1, 1).expand(3, size, size).clone()
    sx0, sy0 = max(0, -ox), max(0, -oy)
    dx0, dy0 = max(0, ox), max(0, oy)
    w, h = min(new - sx0, size - dx0), min(new - sy0, size - dy0)
    if w > 0 and h > 0:
        out[:, dy0:dy0 + h, dx0:dx0 + w] = scaled[:, sy0:sy0 + h, sx0:sx0 + w]
    moved = boxes * (new / size) + np.array([ox, oy, ox, oy], np.float32)
    b, lab = _kept(moved, labels, _clip(moved, size))
    return out, b, lab


def flip(image: torch.Tensor, boxes: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    size = image.shape[-1]
    mirrored = np.stack([size - boxes[:, 2], boxes[:, 1], size - boxes[:, 0], boxes[:, 3]], 1) if len(boxes) else boxes
    return image.flip(-1), mirrored.astype(np.float32).reshape(-1, 4)


def colour(pixels: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """Brightness, contrast and saturation on an RGB image in [0, 1] (torchvision's adjust_* arithmetic)."""
    brightness, contrast, saturation = factors.tolist()
    out = (pixels * brightness).clamp(0, 1)
    grey = (0.299 * out[0] + 0.587 * out[1] + 0.114 * out[2])
    out = (grey.mean() + contrast * (out - grey.mean())).clamp(0, 1)
    grey = (0.299 * out[0] + 0.587 * out[1] + 0.114 * out[2])[None]
    return (grey + saturation * (out - grey)).clamp(0, 1)


class DetectionAugment:
    """Applies an epoch's views to a batch: images normalised with ``mean``/``std`` (per channel), letterbox
    border ``pad_pixel`` on the 0-255 scale."""

    def __init__(self, mean: list[float], std: list[float], pad_pixel: int = 114) -> None:
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
        self.pad = ((pad_pixel / 255.0 - self.mean) / self.std).view(3)

    def __call__(self, x: torch.Tensor, boxes: list[np.ndarray], labels: list[np.ndarray], idx: list[int],
                 views: EpochViews) -> tuple[torch.Tensor, list[np.ndarray], list[np.ndarray]]:
        images, out_boxes, out_labels = [], [], []
        for i in idx:
            if bool(views.mosaic[i]):
                tiles = [i, *views.partners[i].tolist()]
                image, b, lab = mosaic(x, boxes, labels, tiles, tuple(views.centre[i].tolist()), self.pad)
            else:
                image, b, lab = x[i], boxes[i], labels[i]
            image, b, lab = zoom(image, b, lab, float(views.scale[i]), tuple(views.anchor[i].tolist()), self.pad)
            if bool(views.flip[i]):
                image, b = flip(image, b)
            pixels = colour(image * self.std + self.mean, views.colour[i])
            images.append((pixels - self.mean) / self.std)
            out_boxes.append(b)
            out_labels.append(lab)
        return torch.stack(images), out_boxes, out_labels
