"""The one way edgekit opens an image file: with a limit on its declared size (a decompression bomb).

A PNG of a few kilobytes can declare 20000 x 20000 pixels and expand to gigabytes when decoded. PIL only
warns above ``Image.MAX_IMAGE_PIXELS`` and raises above twice that; here anything above ``MAX_PIXELS`` is an
error, checked from the header before a pixel is decoded. ImageTooLarge is an OSError, so every caller's
"cannot read image" handling (and ``--skip-bad-images``) covers it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image

MAX_PIXELS = 89_478_485  # PIL's own default threshold (where it merely warns): about 9459 x 9459


class ImageTooLarge(OSError):
    """The image declares more pixels than MAX_PIXELS."""


@contextmanager
def open_image(path: Path) -> Iterator[Image.Image]:
    """``Image.open`` with the pixel limit enforced; raises ImageTooLarge naming the file and its size."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise ImageTooLarge(f"{path} declares more than {MAX_PIXELS} pixels") from None
    with image:
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise ImageTooLarge(f"{path} declares {width} x {height} pixels, more than {MAX_PIXELS}")
        yield image
