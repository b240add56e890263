"""The detection input size, chosen from the data when ``--size`` is not given.

The rule: the smallest common objects must cover at least one cell of the finest level (stride 8), or the
detector has no cell whose centre lands on them reliably. "Smallest common" is the 10th percentile of the
training boxes' shorter side; since the letterbox scales each image's longer side to the input size, that side
measured as a fraction of its image's longer side gives the size directly: size >= 8 / fraction. The size is
rounded up to a multiple of 32 (the sizes Ultralytics and most exporters use; every TinyDetector stride divides
it), never below the built-in 96 px and never above the data's own longest image side (upsampling adds no
detail), at most 640 px.

Only the label files and the image headers are read (Pillow reads the size without decoding the pixels).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import UnidentifiedImageError

from edgekit.data.image_limits import open_image

FINEST_STRIDE = 8
QUANTILE = 10          # percent: 90 % of the training boxes are at least this small one
ROUND_TO = 32
SMALLEST = 96          # the built-in scenes' size, and the floor
LARGEST = 640


@dataclass(frozen=True)
class SizeChoice:
    size: int
    why: str


def _image_side(path: Path) -> tuple[int, int] | None:
    try:
        with open_image(path) as image:
            width, height = image.size
        return height, width
    except (UnidentifiedImageError, OSError):
        return None  # the loader names (or skips) unreadable images


def yolo_fractions(data_yaml: Path) -> tuple[np.ndarray, int]:
    """Each training box's shorter side over its image's longer side, and the longest image side seen."""
    from edgekit.detect.yolo_data import _label_file, _names, image_files, read_labels, read_yaml, training_folder

    doc = read_yaml(data_yaml)
    names = _names(doc["names"], data_yaml)
    fractions, longest = [], 0
    for image in image_files(training_folder(data_yaml, doc)):
        labels = _label_file(image)
        side = _image_side(image)
        if side is None:
            continue
        longest = max(longest, *side)
        if not labels.is_file():
            continue
        boxes, _, _ = read_labels(labels, len(names))
        h, w = side
        widths, heights = (boxes[:, 2] - boxes[:, 0]) * w, (boxes[:, 3] - boxes[:, 1]) * h
        fractions.append(np.minimum(widths, heights) / max(h, w))
    return (np.concatenate(fractions) if fractions else np.zeros(0)), longest


def coco_fractions(annotations: Path, images: Path | None) -> tuple[np.ndarray, int]:
    """As yolo_fractions, over every annotated box of the json (its own width/height entries, else the file)."""
    from edgekit.detect.coco_data import _read_coco

    _, entries, anns = _read_coco(annotations)
    sides: dict[object, tuple[int, int] | None] = {}
    for entry in entries:
        w, h = entry.get("width"), entry.get("height")
        if isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0:
            sides[entry["id"]] = (h, w)
        elif images is not None:
            sides[entry["id"]] = _image_side(images / entry["file_name"])
    fractions = [min(a["bbox"][2], a["bbox"][3]) / max(sides[a["image_id"]])
                 for a in anns if not a.get("iscrowd") and sides.get(a["image_id"])]
    longest = max((max(s) for s in sides.values() if s), default=0)
    return np.asarray(fractions, dtype=np.float64), longest


def choose_size(fractions: np.ndarray, longest: int) -> SizeChoice:
    """The rule of the module docstring, with the reason in words."""
    fractions = fractions[fractions > 0]
    if not len(fractions):
        return SizeChoice(SMALLEST, f"{SMALLEST} px: the training split has no boxes to size the input by")
    small = float(np.percentile(fractions, QUANTILE))
    need = FINEST_STRIDE / small
    ceiling = min(LARGEST, max(SMALLEST, -(-longest // ROUND_TO) * ROUND_TO)) if longest else LARGEST
    size = int(min(ceiling, max(SMALLEST, -(-need // ROUND_TO) * ROUND_TO)))
    why = (f"{size} px: 90 % of the training boxes have a shorter side of at least {100 * small:.2f} % of their "
           f"image's longer side, which covers one stride-{FINEST_STRIDE} cell from {need:.0f} px")
    if need > ceiling:
        why += (f"; capped at {ceiling} px (" + ("the longest image side" if ceiling < LARGEST else "the largest size "
                "chosen") + "): the smallest objects stay under one cell")
    elif size == SMALLEST and need < SMALLEST:
        why += f"; {SMALLEST} px is the smallest size chosen"
    return SizeChoice(size, why)


def size_from_data(data: str, images: str | None) -> SizeChoice | None:
    """The choice for a YOLO data.yaml or COCO json; None for what this cannot read (the loader names it)."""
    path = Path(data)
    if not path.is_file():
        return None
    if path.suffix in (".yaml", ".yml"):
        return choose_size(*yolo_fractions(path))
    if path.suffix == ".json":
        return choose_size(*coco_fractions(path, Path(images) if images else None))
    return None
