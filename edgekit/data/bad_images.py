"""What to do with an image file that cannot be decoded (broken, truncated, not an image at all).

By default it stops the run with an error naming the file. With ``--skip-bad-images`` the file is left
out, one warning line says how many were, and the report lists them (``data.skipped_images``).
"""

from __future__ import annotations

import warnings
from pathlib import Path

from edgekit.data.image_limits import ImageTooLarge
from edgekit.errors import EdgekitError


class BadImages:
    def __init__(self, skip: bool) -> None:
        self.skip = skip
        self.skipped: list[str] = []

    def handle(self, file: Path, exc: Exception, fix: str = "replace or remove the broken file") -> None:
        """Raise for ``file``, or note it as skipped when skipping is on."""
        if not self.skip:
            if isinstance(exc, ImageTooLarge):  # a decompression bomb, or just a huge photo
                raise EdgekitError(f"image {exc}", "resize it, or pass --skip-bad-images to leave such files out") from None
            raise EdgekitError(f"cannot read image {file} ({exc.__class__.__name__})",
                               f"{fix}, or pass --skip-bad-images to leave such files out") from None
        self.skipped.append(str(file))

    def warn(self) -> None:
        if self.skipped:
            shown = ", ".join(Path(p).name for p in self.skipped[:3]) + (", ..." if len(self.skipped) > 3 else "")
            warnings.warn(f"skipped {len(self.skipped)} unreadable image(s) ({shown}); the report lists them",
                          stacklevel=3)
