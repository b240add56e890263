"""One file at a time, each failing alone (Ultralytics style), and what a failed file means for the run.

A file that fails to export (or, in the benchmark, to load and run in its runtime) is recorded in its row
(``status: failed``, ``error``, ``failed_in``) and the other files go on, so the reports still get written;
the stage result lists it under ``failed_files``. The run then ends with exit 1 and one line per failed file
(``failure_lines``). A stage whose record lists failed files is not "up to date": the next run retries
them (``retry_failed``), so a transient failure heals and a lasting one fails again the same way, never
silently reused as a success.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from edgekit.errors import EdgekitError, is_disk_full
from edgekit.pipeline.faults import failure_point, fault_point
from edgekit.pipeline.runner import STAGE_FILE, stage_dir

FAILED_TO = {"export": "failed to export", "benchmark": "failed to load and run in its runtime"}

FAILED_FILES = "failed_files"  # the stage result's list of the files that failed in that stage


def guarded_export(row: dict[str, Any], path: Path, build: Callable[[Path], tuple[dict[str, Any], str]],
                   console: Console) -> dict[str, Any]:
    """``build(path)`` writes and checks the file, returning the row's extra fields and a one-line summary.
    Any exception removes the file and marks the row failed; the other formats go on."""
    started = time.perf_counter()
    try:
        extra, summary = build(path)
        failure_point(f"export:{row['name']}")  # tests: this file's conversion fails after writing it
        row.update(status="ok", bytes=path.stat().st_size, **extra)
        console.print(f"export: {row['name']} {row['bytes'] / 1024:.0f} KiB, {summary}")
        fault_point("export-artifact")
    except Exception as exc:  # noqa: BLE001 - one format failing must not take the others down
        if is_disk_full(exc):
            raise
        _failed(row, path, exc, console)
    row["seconds"] = round(time.perf_counter() - started, 2)
    return row


def error_text(exc: BaseException) -> str:
    """``ConverterError: first line of the message``, at most 300 characters."""
    return f"{exc.__class__.__name__}: {exc}".splitlines()[0][:300]


def _failed(row: dict[str, Any], path: Path, exc: Exception, console: Console) -> None:
    path.unlink(missing_ok=True)
    path.with_name(path.name + ".tmp").unlink(missing_ok=True)  # a rewrite in place cut short (tflite metadata)
    row.update(status="failed", failed_in="export", error=error_text(exc), traceback=traceback.format_exc())
    console.print(f"export: {row['name']} failed: {row['error']}", markup=False, highlight=False)


def failed_names(rows: list[dict[str, Any]]) -> list[str]:
    return [r["name"] for r in rows if r["status"] != "ok"]


def retry_failed(out: Path, stage: str, console: Console) -> bool:
    """True when the stage's last record lists failed files, which this run must retry (and says so)."""
    try:
        record = json.loads((stage_dir(out, stage) / STAGE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    result = record.get("result") or {}
    failed = result.get(FAILED_FILES)
    if failed is None and isinstance(result.get("artifacts"), list):  # a record written before failed_files
        failed = failed_names(result["artifacts"])
    if failed:
        console.print(f"{stage}: {', '.join(failed)} failed last time; retrying", markup=False, highlight=False)
    return bool(failed)


def failure_lines(rows: list[dict[str, Any]], out: Path) -> list[str]:
    """One ``error: <file> failed to export (<cause>) — <fix>`` line per failed file in report or stage rows."""
    lines = []
    for row in rows:
        if row["status"] == "ok":
            continue
        stage = row.get("failed_in", "export")
        rerun = ("rerun `edgekit compress` (or `edgekit export`) with the same options to retry it" if stage == "export"
                 else "rerun `edgekit compress --force-stage export` with the same options to write and load it again")
        lines.append(EdgekitError(
            f"{row['name']} {FAILED_TO.get(stage, 'failed')} ({row.get('error') or 'no error recorded'})",
            f"the other files were written; {rerun}, and if it fails again report an edgekit bug "
            f"with the traceback in {stage_dir(out, stage) / STAGE_FILE}").one_line())
    return lines
