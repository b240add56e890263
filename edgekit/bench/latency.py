"""Host latency: warm up, then time single-image calls and report percentiles.

Sub-millisecond models need many calls for a stable p90, so timing runs for at least ``min_seconds``
as well as at least ``runs`` calls (as TFLite's benchmark_model does with its minimum duration), split
into ``ROUNDS`` rounds; p50 and p90 are each the lowest over the rounds (the quietest round's): a burst
of interference (another process, a VM's stolen time) only ever adds time, and on a shared 2-core VM it
moved a single long run's percentiles by up to 35 % between two invocations.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

WARMUP = 10
MIN_SECONDS = 3.0
MAX_RUNS = 100_000
ROUNDS = 10


@contextmanager
def pinned(threads: int) -> Iterator[None]:
    """A single-threaded measurement stays on one core (the first it may use), so the scheduler does not move it mid-run."""
    if threads != 1 or not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(before)})
        yield
    finally:
        os.sched_setaffinity(0, before)


def measure(call: Callable[[], object], runs: int, threads: int, warmup: int = WARMUP,
            min_seconds: float = MIN_SECONDS) -> dict[str, float | int]:
    enabled = gc.isenabled()
    gc.disable()  # as timeit does: a collection in the middle of a call is not the model's latency
    try:
        with pinned(threads):
            return _measure(call, runs, threads, warmup, min_seconds)
    finally:
        if enabled:
            gc.enable()


def _measure(call: Callable[[], object], runs: int, threads: int, warmup: int, min_seconds: float
             ) -> dict[str, float | int]:
    for _ in range(warmup):
        call()
    rounds: list[np.ndarray] = []
    for _ in range(ROUNDS):
        times: list[float] = []
        started = time.perf_counter()
        while len(times) < max(1, runs // ROUNDS) or \
                (time.perf_counter() - started < min_seconds / ROUNDS and len(times) < MAX_RUNS // ROUNDS):
            start = time.perf_counter_ns()
            call()
            times.append((time.perf_counter_ns() - start) / 1e6)
        rounds.append(np.asarray(times))
    every = np.concatenate(rounds)
    return {"p50": round(min(float(np.percentile(r, 50)) for r in rounds), 4),
            "p90": round(min(float(np.percentile(r, 90)) for r in rounds), 4),
            "mean": round(float(every.mean()), 4), "min": round(float(every.min()), 4), "runs": len(every),
            "rounds": ROUNDS, "statistic": "each percentile's lowest over the rounds", "warmup": warmup, "threads": threads, "batch": 1}
