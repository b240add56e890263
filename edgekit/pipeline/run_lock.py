"""One edgekit command at a time per run folder: ``<out>/.edgekit.lock`` names the holder.

Two commands writing the same stages would overwrite each other's checkpoints. The lock file is
created exclusively (O_EXCL) and holds the holder's pid, host and start time. A lock whose process
is gone (killed with -9, the machine rebooted) is stale: the next command says so and takes it over.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError

LOCK_FILE = ".edgekit.lock"


@contextmanager
def run_lock(out: Path) -> Iterator[None]:
    out = Path(out)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK_FILE
    _acquire(path)
    try:
        yield
    finally:
        try:
            if _read(path).get("pid") == os.getpid():
                path.unlink()
            if created and not any(out.iterdir()):
                out.rmdir()  # a command that failed before writing anything leaves no empty run folder
        except OSError:
            pass


def _acquire(path: Path) -> None:
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
          "command": " ".join(["edgekit", *sys.argv[1:]])[:500]}
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _read(path)
            if _alive(holder):
                raise EdgekitError(
                    f"{path.parent} is in use by another edgekit command (pid {holder['pid']}, started {holder.get('started', '?')})",
                    "wait for it to finish, or pass another --out") from None
            print(f"warning: taking over the stale lock of {path.parent} (pid {holder.get('pid', '?')} is no longer running)",
                  file=sys.stderr)
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(me, handle)
            handle.flush()
            os.fsync(handle.fileno())
        return
    raise EdgekitError(f"could not lock {path.parent}: another command keeps taking it", "rerun in a moment")


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # torn by a kill between create and write: nobody holds it


def _alive(holder: dict[str, Any]) -> bool:
    """The holder still runs: same host, its pid exists and (where /proc tells) is an edgekit process."""
    pid = holder.get("pid")
    if not isinstance(pid, int):
        return False
    if holder.get("host") != socket.gethostname():
        return True  # another machine's (a shared disk): this one cannot tell, so it is respected
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a reused pid, or a killed process not yet reaped (a zombie has an empty command line)
        return b"edgekit" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # no /proc (macOS): the pid exists, so believe it
    except OSError:
        return True
