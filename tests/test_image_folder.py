"""A user's ImageFolder: images of any size and mode go through the one preprocessing recipe."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgekit.data.image_folder import load_image_folder
from edgekit.data.preprocess import PreprocessSpec
from edgekit.errors import EdgekitError

SPEC = PreprocessSpec(size=(16, 16), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


def _write(folder: Path, n: int, value: int, mode: str = "RGB", size: tuple[int, int] = (20, 12)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new(mode, size, color=value if mode == "L" else (value, value, value)).save(folder / f"{i}.png")


def test_splits_classes_and_recipe(tmp_path: Path) -> None:
    _write(tmp_path / "train" / "cat", 10, 10)
    _write(tmp_path / "train" / "dog", 10, 200, mode="L", size=(40, 40))
    _write(tmp_path / "test" / "cat", 2, 10)
    _write(tmp_path / "test" / "dog", 3, 200)
    data = load_image_folder(tmp_path, SPEC)
    assert data.classes == ["cat", "dog"]
    assert data.counts() == {"train": 18, "val": 2, "test": 5}  # val carved from train (10 %)
    images, labels = data.splits["test"]
    assert images.shape == (5, 16, 16, 3) and images.dtype == np.uint8
    assert sorted(labels.tolist()) == [0, 0, 1, 1, 1]
    x, _ = data.tensors("test", SPEC)
    assert x.shape == (5, 3, 16, 16)
    assert np.allclose(x[labels == 1].numpy(), 200 / 255, atol=1e-6)  # grayscale became RGB, scaled


def test_explicit_val_split_is_used(tmp_path: Path) -> None:
    for split, n in (("train", 4), ("val", 2), ("test", 2)):
        _write(tmp_path / split / "a", n, 0)
        _write(tmp_path / split / "b", n, 255)
    assert load_image_folder(tmp_path, SPEC).counts() == {"train": 8, "val": 4, "test": 4}


def test_broken_image_names_the_file(tmp_path: Path) -> None:
    _write(tmp_path / "train" / "a", 2, 0)
    _write(tmp_path / "train" / "b", 2, 255)
    _write(tmp_path / "test" / "a", 1, 0)
    (tmp_path / "train" / "b" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(EdgekitError, match="broken.png"):
        load_image_folder(tmp_path, SPEC)


def test_test_class_unknown_to_train_is_an_error(tmp_path: Path) -> None:
    _write(tmp_path / "train" / "a", 2, 0)
    _write(tmp_path / "train" / "b", 2, 255)
    _write(tmp_path / "test" / "c", 1, 0)
    with pytest.raises(EdgekitError, match="'c'"):
        load_image_folder(tmp_path, SPEC)
