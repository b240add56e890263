"""The one root of every error a user can cause.

The CLI prints ``error: <what> — <fix>`` on one line and exits with code 2. Anything that is not an
EdgekitError is a bug in edgekit and may show a traceback.
"""

from __future__ import annotations

import errno


class EdgekitError(Exception):
    """A problem the user can fix: ``what`` went wrong and ``fix`` says how to repair it."""

    exit_code = 2

    def __init__(self, what: str, fix: str) -> None:
        super().__init__(f"{what} — {fix}")
        self.what = what
        self.fix = fix

    def one_line(self) -> str:
        text = f"error: {self.what} — {self.fix}"
        return " ".join(text.split())


def is_disk_full(exc: BaseException) -> bool:
    """A write that failed for lack of space or quota: it stops the run with cli.main's own message, never
    as one failed file."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)

