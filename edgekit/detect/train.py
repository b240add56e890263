"""What detection training needs from the one training loop (distill/train_loop.py): its recipe (AdamW, seeded
augmentation with boxes, targets assigned per batch) and decoding the raw outputs for mAP."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from edgekit.data.preprocess import LETTERBOX_PAD
from edgekit.detect.assign import assign
from edgekit.detect.augment import DetectionAugment, EpochViews, draw_views
from edgekit.detect.losses import DetectionTargets
from edgekit.detect.postprocess import decode
from edgekit.detect.tiny_detector import STRIDES, grid
from edgekit.distill.train_loop import Recipe


def targets_for(boxes: list[np.ndarray], labels: list[np.ndarray], size: int, num_classes: int) -> DetectionTargets:
    centres, strides = grid(size)
    cls, box, pos = zip(*(assign(torch.as_tensor(b), torch.as_tensor(lab), centres, strides, num_classes)
                          for b, lab in zip(boxes, labels)))
    return DetectionTargets(torch.stack(cls), torch.stack(box), torch.stack(pos), centres, strides)


def detection_recipe(num_classes: int, forward: Callable[[Any, torch.Tensor], dict] | None = None, *,
                     epochs: int = 1, mean: Sequence[float] = (0.0, 0.0, 0.0),
                     std: Sequence[float] = (1.0, 1.0, 1.0)) -> Recipe:
    """AdamW with a short warm-up, the per-epoch seeded augmentation of detect/augment.py (mosaic off for the
    last fifth of ``epochs``; ``mean``/``std`` are the run's, to find pixel space and the letterbox grey),
    targets assigned per batch.

    A plain TinyDetector trains on its training outputs (``forward_train``) in channels-last layout: PyTorch's CPU
    depthwise and 1x1 convolutions ran a training step about 30 % faster that way (measured on a batch of 32 at
    96 px). A prepared QAT graph passes its own ``forward`` and keeps the default layout."""
    augment = DetectionAugment(list(mean), list(std), LETTERBOX_PAD)

    def views(n: int, seed: int, augment_seed: int, epoch: int, hflip: bool, batch: int) -> EpochViews:
        return draw_views(n, augment_seed, epoch, epochs)  # flips always: scenes and photos may mirror

    def batch(x: torch.Tensor, split: Any, idx: torch.Tensor, drawn: EpochViews) -> tuple[torch.Tensor, Any]:
        xb, boxes, labels = augment(x, split.boxes, split.labels, idx.tolist(), drawn)
        return xb, targets_for(boxes, labels, x.shape[-1], num_classes)

    return Recipe(optimizer=lambda params, lr, wd: torch.optim.AdamW(params, lr=lr, weight_decay=wd),
                  weight_decay=1e-4, warmup=0.1, views=views, batch=batch,
                  student_forward=forward or (lambda m, xb: m.forward_train(xb)),
                  teacher_forward=lambda t, xb: t.forward_train(xb), channels_last=forward is None)


@torch.no_grad()
def predict_raw(model: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]], x: torch.Tensor,
                batch_size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Scores [N, A, C] and box distances [N, A, 4] for every image (the model gives them channel-major)."""
    scores, boxes = zip(*(model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)))
    return torch.cat(scores).transpose(1, 2).numpy(), torch.cat(boxes).transpose(1, 2).numpy()


def detections(scores: np.ndarray, ltrb: np.ndarray, size: int, score: float = 0.001, iou: float = 0.5,
               multi_label: bool = True) -> list[list[dict]]:
    """Decoded detections per image: by default as mAP evaluation wants them (a low score threshold, every class
    of a location); at an app's thresholds pass ``multi_label=False`` (postprocess.decode)."""
    return [decode(s, b, size, list(STRIDES), score, iou, multi_label=multi_label) for s, b in zip(scores, ltrb)]
