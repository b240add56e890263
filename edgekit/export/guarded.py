"""One export format at a time, each failing alone (Ultralytics style): the row records what happened."""

from __future__ import annotations

import errno
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from edgekit.pipeline.faults import fault_point


def guarded_export(row: dict[str, Any], path: Path, build: Callable[[Path], tuple[dict[str, Any], str]],
                   console: Console) -> dict[str, Any]:
    """``build(path)`` writes and checks the file, returning the row's extra fields and a one-line summary.
    Any exception removes the file and marks the row failed; the other formats go on."""
    started = time.perf_counter()
    try:
        extra, summary = build(path)
        row.update(status="ok", bytes=path.stat().st_size, **extra)
        console.print(f"export: {row['name']} {row['bytes'] / 1024:.0f} KiB, {summary}")
        fault_point("export-artifact")
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise  # a full disk stops the run with its own message (cli.main), not as one failed format
        _failed(row, path, exc, console)
    except Exception as exc:  # noqa: BLE001 - one format failing must not take the others down
        _failed(row, path, exc, console)
    row["seconds"] = round(time.perf_counter() - started, 2)
    return row


def _failed(row: dict[str, Any], path: Path, exc: Exception, console: Console) -> None:
    path.unlink(missing_ok=True)
    row.update(status="failed", error=f"{exc.__class__.__name__}: {exc}".splitlines()[0][:300])
    console.print(f"[red]export: {row['name']} failed[/red]: {row['error']}")
    console.print(traceback.format_exc(limit=3), markup=False, highlight=False)
