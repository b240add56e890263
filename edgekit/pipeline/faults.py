"""Fault injection for tests that run the real ``edgekit`` command in a subprocess.

``EDGEKIT_KILL_AT=<point>[:<n>]`` kills this process at a named point (the kill -9 tests): a test cannot time
a SIGKILL from outside to land inside a checkpoint write, a window of milliseconds, so the process kills
itself there, the n-th time (default the first) it passes the point.

``EDGEKIT_FAIL_AT=<point>`` raises ``InjectedFailure`` at a named point instead (``export:model_int8.tflite``:
that file's conversion fails), so a test can provoke a converter failure no real input reliably causes.

Without the variables (every real run) a fault point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "EDGEKIT_KILL_AT"
FAIL_ENV = "EDGEKIT_FAIL_AT"
_passes: dict[str, int] = {}


class InjectedFailure(RuntimeError):
    """The failure ``EDGEKIT_FAIL_AT`` asked for; never raised in a real run."""


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


def failure_point(name: str) -> None:
    """Raise ``InjectedFailure`` when ``EDGEKIT_FAIL_AT`` names this point (every time it is passed)."""
    if os.environ.get(FAIL_ENV) == name:
        raise InjectedFailure(f"injected failure at {name} ({FAIL_ENV})")
