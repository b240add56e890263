"""Fault injection for the kill -9 tests: ``EDGEKIT_KILL_AT=<point>[:<n>]`` kills this process at a named point.

A test cannot time a SIGKILL from outside to land inside a checkpoint write, a window of milliseconds,
so the process kills itself there, the n-th time (default the first) it passes the point. Without the
variable (every real run) a fault point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "EDGEKIT_KILL_AT"
_passes: dict[str, int] = {}


def fault_point(name: str) -> None:
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    point, _, nth = wanted.partition(":")
    if point != name:
        return
    _passes[name] = _passes.get(name, 0) + 1
    if _passes[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
