"""``--data data.yaml``: the YOLO layout with an Ultralytics-style YAML.

    path: /data/shapes        # optional; relative paths are relative to the YAML file
    train: images/train       # label files live in the matching labels/ folder: images/x.jpg -> labels/x.txt
    val: images/val
    test: images/test         # optional; metrics use test when present, else val
    names: [cat, dog]         # or {0: cat, 1: dog}

Label lines are ``class cx cy w h``, normalised to the image. Documented choices: an image without a label
file is background (no objects); a box reaching outside the image is clipped to it (a warning counts them);
a box with no area left after clipping is dropped. A malformed line or a class index out of range is an
error naming the file and line.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import UnidentifiedImageError

from edgekit.detect.data import DetectionData, DetectionSplit
from edgekit.data.bad_images import BadImages
from edgekit.data.image_limits import open_image
from edgekit.data.preprocess import letterbox_boxes, letterbox_image
from edgekit.errors import EdgekitError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def _names(raw: object, source: Path) -> list[str]:
    if isinstance(raw, list) and raw and all(isinstance(n, str) for n in raw):
        return list(raw)
    if isinstance(raw, dict) and raw and all(isinstance(k, int) for k in raw):
        if sorted(raw) != list(range(len(raw))):
            raise EdgekitError(f"{source}: 'names' keys must be 0..{len(raw) - 1}", "number the classes from 0 without gaps")
        return [str(raw[k]) for k in sorted(raw)]
    raise EdgekitError(f"{source} has no usable 'names'", "add names: [class0, class1, ...] (a list, or a dict 0: name)")


def read_yaml(path: Path) -> dict:
    import yaml

    if not path.is_file():
        raise EdgekitError(f"data file {path} does not exist", "pass an Ultralytics-style data.yaml")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise EdgekitError(f"{path} is not valid YAML ({type(exc).__name__})", "fix the file's syntax") from None
    if not isinstance(doc, dict):
        raise EdgekitError(f"{path} is not a YAML mapping", "write keys path/train/val/names")
    for key in ("train", "val"):
        if key not in doc:
            raise EdgekitError(f"{path} lacks '{key}'", f"add {key}: images/{key} (a folder of images)")
    if "names" not in doc:
        raise EdgekitError(f"{path} lacks 'names'", "add names: [class0, class1, ...]")
    return doc


def data_root(path: Path, doc: dict) -> Path:
    """The folder the YAML's split paths are relative to: its ``path``, itself relative to the YAML file."""
    root = Path(doc.get("path") or ".")
    return root if root.is_absolute() else (path.parent / root)


def training_folder(path: Path, doc: dict) -> Path:
    """The folder of the YAML's train split (what the size and epoch rules survey before any image is decoded)."""
    return data_root(path, doc) / str(doc["train"])


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def _label_file(image: Path) -> Path:
    parts = list(image.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts).with_suffix(".txt")
    return image.with_suffix(".txt")


def read_labels(path: Path, num_classes: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Normalised cx, cy, w, h boxes -> normalised xyxy, labels, and how many boxes were clipped."""
    boxes, labels, clipped = [], [], 0
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split()
        try:
            if len(fields) != 5:
                raise ValueError
            cls = int(fields[0])
            cx, cy, w, h = (float(v) for v in fields[1:])
            if not all(np.isfinite([cx, cy, w, h])):
                raise ValueError
        except ValueError:
            raise EdgekitError(f"{path} line {number} is malformed: {line.strip()[:60]!r}",
                               "write 'class cx cy w h' with the four numbers normalised to the image") from None
        if not 0 <= cls < num_classes:
            raise EdgekitError(f"{path} line {number}: class {cls} is out of range (names has {num_classes})",
                               f"use a class index from 0 to {num_classes - 1}, or add the class to names")
        box = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
        inside = np.clip(box, 0.0, 1.0)
        if not np.allclose(inside, box, atol=1e-4):
            clipped += 1
        if inside[2] - inside[0] <= 0 or inside[3] - inside[1] <= 0:
            continue
        boxes.append(inside)
        labels.append(cls)
    return np.array(boxes, dtype=np.float32).reshape(-1, 4), np.array(labels, dtype=np.int64), clipped


def _split(folder: Path, names: list[str], size: int, label: str, bad: BadImages) -> tuple[DetectionSplit, int]:
    if not folder.is_dir():
        raise EdgekitError(f"the {label} folder {folder} does not exist", f"fix '{label}' in the data YAML")
    files = image_files(folder)
    if not files:
        raise EdgekitError(f"the {label} folder {folder} holds no images", "add .jpg/.png images or fix the YAML")
    images, boxes, labels, sizes, clipped = [], [], [], [], 0
    for f in files:
        try:
            with open_image(f) as im:
                im = im.convert("RGB")
                sizes.append((im.height, im.width))
                images.append(letterbox_image(im, (size, size)))
        except (UnidentifiedImageError, OSError) as exc:
            bad.handle(f, exc)
            continue
        label_file = _label_file(f)
        if label_file.is_file():
            b, lab, c = read_labels(label_file, len(names))
            clipped += c
        else:  # no label file: background
            b, lab = np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
        h, w = sizes[-1]
        boxes.append(letterbox_boxes(b * np.array([w, h, w, h], np.float32), h, w, (size, size)))
        labels.append(lab)
    if not images:
        raise EdgekitError(f"no image in the {label} folder {folder} could be read", "replace the broken files")
    return DetectionSplit(np.stack(images), boxes, labels, sizes), clipped


def load_yolo(path: Path, size: int, skip_bad_images: bool = False) -> DetectionData:
    doc = read_yaml(path)
    names = _names(doc["names"], path)
    root = data_root(path, doc)
    splits, clipped = {}, 0
    bad = BadImages(skip_bad_images)
    for key in ("train", "val", "test"):
        if key in doc and doc[key]:
            splits[key], c = _split(root / str(doc[key]), names, size, key, bad)
            clipped += c
    bad.warn()
    if clipped:
        warnings.warn(f"{clipped} box(es) reached outside their image and were clipped to it", stacklevel=2)
    return DetectionData(names, splits, str(path), size, skipped=bad.skipped)
