"""The built-in data set: scikit-learn's 1,797 real handwritten digits, shipped with the package.

Each 8x8 digit (values 0..16) becomes an 8-bit RGB image (value x 255/16, rounded), then goes through
the same resize as any user photo. The train/val/test split is fixed (seed 0), independent of --seed,
so runs with different seeds are compared on the same test images.
"""

from __future__ import annotations

import numpy as np
import sklearn
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from edgekit.data.dataset import ImageData
from edgekit.data.preprocess import PreprocessSpec

SPLIT_SEED = 0
TEST_FRACTION = 0.2
VAL_FRACTION = 0.1


def digits_as_uint8() -> tuple[np.ndarray, np.ndarray]:
    """(N, 8, 8, 3) uint8 RGB digits and their labels."""
    bunch = load_digits()
    gray = np.rint(bunch.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=-1), bunch.target.astype(np.int64)


def load_builtin_digits(spec: PreprocessSpec) -> ImageData:
    images, labels = digits_as_uint8()
    resized = np.stack([spec.resize(Image.fromarray(img)) for img in images])
    idx = np.arange(len(labels))
    rest, test = train_test_split(idx, test_size=TEST_FRACTION, stratify=labels, random_state=SPLIT_SEED)
    train, val = train_test_split(rest, test_size=VAL_FRACTION / (1 - TEST_FRACTION),
                                  stratify=labels[rest], random_state=SPLIT_SEED)
    splits = {name: (resized[ix], labels[ix]) for name, ix in (("train", train), ("val", val), ("test", test))}
    return ImageData(classes=[str(d) for d in range(10)], splits=splits, source="built-in digits (scikit-learn)",
                     identity=f"sklearn-digits/{sklearn.__version__}/split{SPLIT_SEED}")
