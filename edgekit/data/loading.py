"""Pick the data source from the settings: built-in digits or a user's ImageFolder."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from edgekit.config import Settings
from edgekit.data.builtin_digits import load_builtin_digits
from edgekit.data.dataset import ImageData
from edgekit.data.image_folder import load_image_folder
from edgekit.data.preprocess import PreprocessSpec


def preprocess_spec(settings: Settings) -> PreprocessSpec:
    return PreprocessSpec(size=(settings.size, settings.size), mean=tuple(settings.mean), std=tuple(settings.std))


@lru_cache(maxsize=4)
def _load(data: str | None, spec: PreprocessSpec, skip_bad_images: bool) -> ImageData:
    if data is None:
        return load_builtin_digits(spec)
    return load_image_folder(Path(data), spec, skip_bad_images)


def load_data(settings: Settings) -> ImageData:
    """Decode once per process: every stage of one ``compress`` shares the same arrays."""
    return _load(settings.data, preprocess_spec(settings), settings.skip_bad_images)


def data_identity(settings: Settings) -> str:
    return load_data(settings).identity
