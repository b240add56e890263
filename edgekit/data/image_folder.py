"""User data in the ImageFolder layout: ``train/<class>/*``, ``test/<class>/*``, optional ``val/``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, UnidentifiedImageError

from edgekit.data.bad_images import BadImages
from edgekit.data.image_limits import open_image
from edgekit.errors import EdgekitError
from edgekit.pipeline.fingerprint import path_digest

if TYPE_CHECKING:  # both import torch; the layout check below runs before torch is loaded
    from edgekit.data.dataset import ImageData
    from edgekit.data.preprocess import PreprocessSpec

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
VAL_FRACTION = 0.1
SPLIT_SEED = 0


def _class_dirs(split_dir: Path) -> list[Path]:
    return sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def _image_files(class_dir: Path) -> list[Path]:
    return sorted(p for p in class_dir.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _load_split(split_dir: Path, classes: list[str], spec: PreprocessSpec, bad: BadImages) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for class_dir in _class_dirs(split_dir):
        if class_dir.name not in classes:
            raise EdgekitError(f"class '{class_dir.name}' in {split_dir} is not among the train classes",
                               f"add {split_dir.parent / 'train' / class_dir.name} or remove that folder")
        for file in _image_files(class_dir):
            try:
                with open_image(file) as img:
                    images.append(spec.resize(img))
            except (UnidentifiedImageError, OSError) as exc:
                bad.handle(file, exc)
                continue
            labels.append(classes.index(class_dir.name))
    if not images:
        raise EdgekitError(f"no images in {split_dir}", f"put images into {split_dir}/<class>/")
    h, w = spec.size
    return np.stack(images).reshape(-1, h, w, 3), np.asarray(labels, dtype=np.int64)


def check_image_folder(root: Path) -> list[str]:
    """Validate the layout and return the class names, without decoding any image."""
    root = Path(root)
    if not root.exists():
        raise EdgekitError(f"data directory {root} does not exist", "pass --data an existing ImageFolder directory")
    if not root.is_dir():
        raise EdgekitError(f"--data {root} is not a directory", "pass a folder holding train/<class>/ and test/<class>/")
    train = root / "train"
    if not train.is_dir():
        raise EdgekitError(f"{root} has no train/ folder", "lay the data out as train/<class>/*.jpg and test/<class>/*.jpg")
    classes = [d.name for d in _class_dirs(train) if _image_files(d)]
    if not classes:
        raise EdgekitError(f"{train} holds no images", "put images into train/<class>/ folders")
    if len(classes) < 2:
        raise EdgekitError(f"{train} has only one class ('{classes[0]}')",
                           "a classifier needs at least two class folders under train/")
    if not (root / "test").is_dir():
        raise EdgekitError(f"{root} has no test/ folder", "add test/<class>/ images so accuracy is measured on held-out data")
    for name in ("val", "test"):
        if (root / name).is_dir():
            for class_dir in _class_dirs(root / name):
                if class_dir.name not in classes:
                    raise EdgekitError(f"class '{class_dir.name}' in {root / name} is not among the train classes",
                                       f"add {train / class_dir.name} or remove that folder")
    return classes


def native_side(root: Path, sample: int = 200) -> int:
    """The typical short side of the training images, in pixels (the median of an even sample of up to
    ``sample`` files, read from their headers: nothing is decoded)."""
    files = [f for d in _class_dirs(Path(root) / "train") for f in _image_files(d)]
    step = max(1, len(files) // sample)
    sides = []
    for file in files[::step][:sample]:
        try:
            with Image.open(file) as img:
                sides.append(min(img.size))
        except (UnidentifiedImageError, OSError):
            continue  # named by the data check when the images are decoded
    return int(np.median(sides)) if sides else 0


def load_image_folder(root: Path, spec: PreprocessSpec, skip_bad_images: bool = False) -> ImageData:
    from edgekit.data.dataset import ImageData

    root = Path(root)
    classes = check_image_folder(root)
    bad = BadImages(skip_bad_images)
    splits = {"train": _load_split(root / "train", classes, spec, bad)}
    for name in ("val", "test"):
        if (root / name).is_dir():
            splits[name] = _load_split(root / name, classes, spec, bad)
    bad.warn()
    if "val" not in splits:
        images, labels = splits["train"]
        order = np.random.default_rng(SPLIT_SEED).permutation(len(labels))
        n_val = max(1, int(round(len(labels) * VAL_FRACTION)))
        splits["val"] = (images[order[:n_val]], labels[order[:n_val]])
        splits["train"] = (images[order[n_val:]], labels[order[n_val:]])
    if "test" not in splits:
        raise EdgekitError(f"{root} has no test/ folder", "add test/<class>/ images so accuracy is measured on held-out data")
    return ImageData(classes=classes, splits=splits, source=str(root), identity=path_digest(root), skipped=bad.skipped)
