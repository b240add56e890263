"""Host latency: warm up, then time single-image calls and report percentiles.

Sub-millisecond models need many calls for a stable p90, so timing runs for at least ``min_seconds``
per model as well as at least ``runs`` calls (as TFLite's benchmark_model does with its minimum
duration), split into ``ROUNDS`` short rounds; p50 and p90 are each the lowest over the rounds (the
quietest round's): interference (another tenant of a VM's physical core, stolen time) only ever adds
time. On the shared 2-core VM this was developed on, such bursts last seconds: one measured thread CPU
time rose with wall time (so it is contention, not steal), and a burst covering a whole 3-second
measurement moved its p90 by 11 %. So several models are timed *interleaved*, round after round,
each round a slice of every model: a burst then spoils a few rounds of each model rather than all
rounds of one (benchmarks/results/host_stability.md).

``noise_pct`` says how noisy the host was meanwhile: how far the median round's p50 lies above the
quietest round's. Above about 10 %, two runs' p90 will not agree within 10 % either.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import numpy as np

WARMUP = 10
MIN_SECONDS = 3.0
MAX_RUNS = 100_000
ROUNDS = 20
STATISTIC = "each percentile's lowest over rounds interleaved with the other models'"


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


@contextmanager
def _gc_off() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()  # as timeit does: a collection in the middle of a call is not the model's latency
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def measure(call: Callable[[], object], runs: int, threads: int, warmup: int = WARMUP,
            min_seconds: float = MIN_SECONDS) -> dict[str, float | int]:
    """Latency percentiles of one model's ``call``."""
    return measure_interleaved({"model": call}, runs, threads, warmup, min_seconds)["model"]


def measure_interleaved(calls: Mapping[str, Callable[[], object]], runs: int, threads: int, warmup: int = WARMUP,
                        min_seconds: float = MIN_SECONDS) -> dict[str, dict[str, float | int]]:
    """Latency percentiles of every model in ``calls``, timed in interleaved rounds (see the module docstring)."""
    with _gc_off(), pinned(threads):
        for call in calls.values():
            for _ in range(warmup):
                call()
        rounds: dict[str, list[np.ndarray]] = {name: [] for name in calls}
        for _ in range(ROUNDS):
            for name, call in calls.items():
                rounds[name].append(_time_slice(call, max(1, runs // ROUNDS), min_seconds / ROUNDS, MAX_RUNS // ROUNDS))
    return {name: _summary(r, threads, warmup) for name, r in rounds.items()}


def _time_slice(call: Callable[[], object], at_least: int, seconds: float, at_most: int) -> np.ndarray:
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < at_least or (time.perf_counter() - started < seconds and len(times) < at_most):
        start = time.perf_counter_ns()
        call()
        times.append((time.perf_counter_ns() - start) / 1e6)
    return np.asarray(times)


def _summary(rounds: list[np.ndarray], threads: int, warmup: int) -> dict[str, float | int]:
    every = np.concatenate(rounds)
    p50s = [float(np.percentile(r, 50)) for r in rounds]
    return {"noise_pct": round(100 * (float(np.median(p50s)) / min(p50s) - 1), 1),"p50": round(min(float(np.percentile(r, 50)) for r in rounds), 4),
            "p90": round(min(float(np.percentile(r, 90)) for r in rounds), 4),
            "mean": round(float(every.mean()), 4), "min": round(float(every.min()), 4), "runs": len(every),
            "rounds": len(rounds), "statistic": STATISTIC, "warmup": warmup, "threads": threads, "batch": 1}
