"""Host latency: warm up, then time single-image calls in interleaved rounds until enough quiet rounds.

On a shared machine (a cloud VM whose physical cores other tenants use) interference comes in bursts
of seconds and only ever adds time. On the 2-core VM this was developed on, a 60-second log of
50 ms rounds showed it bimodal: about a quarter of the rounds quiet, their p50 within 5 % of each
other, the rest 15-95 % slower (no steal time is reported, and thread CPU time rises with wall time:
another tenant shares the physical core), with busy stretches of up to about ten seconds and quiet
ones scattered through the minute. A fixed window of a few seconds could therefore fall wholly in a
busy stretch, and two runs disagreed by up to 70 % at p90 (benchmarks/results/host_stability.md,
before this scheme; with it, 4 runs at 50-95 % noise agreed within 4 %).

So the models are timed *interleaved*, round after round, each round a ``SLICE_SECONDS`` slice of
every model, and timing goes on until every model has ``QUIET_ROUNDS`` quiet rounds (a round whose
p50 lies within ``QUIET_WITHIN`` of the model's quietest rounds') and ``runs`` calls in them, or until
``max_seconds``. p50 and p90 are those of every call in the quiet rounds together: the latency of the
model on this host when nothing else competes for it. ``settled`` says whether enough quiet rounds
came before the cap; ``noise_pct`` how far the median round lay above the quiet ones.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import numpy as np

WARMUP = 10
SLICE_SECONDS = 0.05
MIN_CALLS_PER_SLICE = 10  # a slow model's round still has a p90
MAX_CALLS_PER_SLICE = 5000
QUIET_ROUNDS = 5
QUIET_WITHIN = 0.05
SECONDS = 20.0
BUSY_FACTOR = 3
STATISTIC = (f"median over the quiet rounds of each round's percentile (rounds within {100 * QUIET_WITHIN:.0f} % "
             "of the quietest), models timed in interleaved rounds")


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
            seconds: float = SECONDS) -> dict[str, float | int | bool | str]:
    """Latency percentiles of one model's ``call``."""
    return measure_interleaved({"model": call}, runs, threads, warmup, seconds)["model"]


def measure_interleaved(calls: Mapping[str, Callable[[], object]], runs: int, threads: int, warmup: int = WARMUP,
                        seconds: float = SECONDS) -> dict[str, dict[str, float | int | bool | str]]:
    """Latency percentiles of every model in ``calls``, timed in interleaved rounds (see the module docstring)."""
    rounds: dict[str, list[np.ndarray]] = {name: [] for name in calls}
    with _gc_off(), pinned(threads):
        for call in calls.values():
            for _ in range(warmup):
                call()
        started = time.perf_counter()
        while True:
            for name, call in calls.items():
                rounds[name].append(_time_slice(call))
            elapsed = time.perf_counter() - started
            if elapsed >= seconds and all(_settled(r, runs) for r in rounds.values()):
                break
            if elapsed >= BUSY_FACTOR * seconds:
                break
    return {name: _summary(r, runs, threads, warmup) for name, r in rounds.items()}


def _time_slice(call: Callable[[], object]) -> np.ndarray:
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < MIN_CALLS_PER_SLICE or (time.perf_counter() - started < SLICE_SECONDS
                                                and len(times) < MAX_CALLS_PER_SLICE):
        start = time.perf_counter_ns()
        call()
        times.append((time.perf_counter_ns() - start) / 1e6)
    return np.asarray(times)


def _quiet(values: np.ndarray) -> np.ndarray:
    """Which rounds are quiet for one statistic: within ``QUIET_WITHIN`` of the second-lowest round's (one lucky round does not set the bar)."""
    return values <= np.sort(values)[min(1, len(values) - 1)] * (1 + QUIET_WITHIN)


def _per_round(rounds: list[np.ndarray], q: float) -> np.ndarray:
    return np.array([np.percentile(r, q) for r in rounds])


def _settled(rounds: list[np.ndarray], runs: int) -> bool:
    if sum(len(r) for r in rounds) < runs:
        return False
    return all(_quiet(_per_round(rounds, q)).sum() >= QUIET_ROUNDS for q in (50, 90))


def _summary(rounds: list[np.ndarray], runs: int, threads: int, warmup: int) -> dict[str, float | int | bool | str]:
    every = np.concatenate(rounds)
    p50s, p90s = _per_round(rounds, 50), _per_round(rounds, 90)
    quiet50, quiet90 = _quiet(p50s), _quiet(p90s)
    p50 = float(np.median(p50s[quiet50]))
    return {"p50": round(p50, 4), "p90": round(float(np.median(p90s[quiet90])), 4),
            "mean": round(float(every.mean()), 4), "min": round(float(every.min()), 4),
            "runs": len(every), "rounds": len(rounds), "quiet_rounds": int(min(quiet50.sum(), quiet90.sum())),
            "settled": _settled(rounds, runs), "noise_pct": round(100 * max(0.0, float(np.median(p50s)) / p50 - 1), 1),
            "statistic": STATISTIC, "warmup": warmup, "threads": threads, "batch": 1}
