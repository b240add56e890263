"""Pick the classification data: built-in digits or a user's ImageFolder, decoded once per process."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from edgekit.data.builtin_digits import load_builtin_digits
from edgekit.data.dataset import ImageData
from edgekit.data.image_folder import load_image_folder
from edgekit.data.preprocess import PreprocessSpec


@lru_cache(maxsize=4)
def load_image_data(data: str | None, spec: PreprocessSpec, skip_bad_images: bool = False) -> ImageData:
    """Every stage of one ``compress`` shares the same arrays."""
    if data is None:
        return load_builtin_digits(spec)
    return load_image_folder(Path(data), spec, skip_bad_images)
