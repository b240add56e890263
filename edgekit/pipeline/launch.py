"""``--nproc N``: run the same command as N processes on this machine, as ``torchrun --standalone`` would.

The launcher holds the run folder's lock for all of them, gives each its rank (``RANK``, ``WORLD_SIZE``,
``MASTER_ADDR``/``MASTER_PORT`` for the env:// rendezvous) and its share of the CPU threads, and shows
rank 0's output; the other ranks' output goes to a temporary log, shown only when one of them fails
alone. When any process fails the others are stopped (they would wait in a collective forever), and the
command exits with rank 0's code. The processes die with the launcher (a ``kill -9`` of it included),
so a rerun finds no orphans and resumes from the checkpoints as a single process would.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

LOCK_HELD = "EDGEKIT_LOCK_HELD"  # set for the processes of a launcher that holds the run lock


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass  # not Linux: the processes then outlive a killed launcher


def launch(nproc: int, argv: list[str]) -> int:
    """Run ``edgekit <argv>`` as ``nproc`` ranks; returns the exit code for the command."""
    threads = os.environ.get("OMP_NUM_THREADS") or str(max(1, (os.cpu_count() or 1) // nproc))
    base = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "WORLD_SIZE": str(nproc),
            "LOCAL_WORLD_SIZE": str(nproc), "OMP_NUM_THREADS": threads, LOCK_HELD: str(os.getpid())}
    logs = [tempfile.TemporaryFile() for _ in range(1, nproc)]
    procs = []
    for rank in range(nproc):
        env = {**base, "RANK": str(rank), "LOCAL_RANK": str(rank)}
        quiet = {} if rank == 0 else {"stdout": subprocess.DEVNULL, "stderr": logs[rank - 1]}
        procs.append(subprocess.Popen([sys.executable, "-m", "edgekit", *argv], env=env,
                                      preexec_fn=_die_with_parent, **quiet))
    try:
        codes = _wait_all(procs)
    except KeyboardInterrupt:
        _stop(procs)
        raise
    failed = [r for r, code in enumerate(codes) if code not in (0, None) and r > 0]
    if codes[0] == 0 and failed:
        logs[failed[0] - 1].seek(0)
        tail = logs[failed[0] - 1].read().decode(errors="replace").strip().splitlines()[-20:]
        print("\n".join(tail), file=sys.stderr)
        return 1
    return codes[0] or 0


def _wait_all(procs: list[subprocess.Popen]) -> list[int | None]:
    while True:
        codes = [p.poll() for p in procs]
        if all(c is not None for c in codes):
            return codes
        if any(c not in (None, 0) for c in codes):
            time.sleep(2)  # let the failing rank's siblings see it themselves first
            _stop(procs)
            return [p.wait() if p.poll() is None else p.returncode for p in procs]
        time.sleep(0.2)


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
    for p in procs:
        p.wait()
