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
    rounds = {name: _Rounds() for name in calls}
    with _gc_off(), pinned(threads):
        for call in calls.values():
            for _ in range(warmup):
                call()
        started = time.perf_counter()
        while True:
            for name, call in calls.items():
                rounds[name].add(_time_slice(call))
            elapsed = time.perf_counter() - started
            if elapsed >= seconds and all(r.settled(runs) for r in rounds.values()):
                break
            if elapsed >= BUSY_FACTOR * seconds:
                break
    return {name: r.summary(runs, threads, warmup) for name, r in rounds.items()}


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


class _Rounds:
    """One model's timing rounds, each round's p50 and p90 computed once, as the round is added."""

    def __init__(self) -> None:
        self.times: list[np.ndarray] = []
        self.p50s: list[float] = []
        self.p90s: list[float] = []
        self.calls = 0

    def add(self, times: np.ndarray) -> None:
        self.times.append(times)
        p50, p90 = np.percentile(times, [50, 90])
        self.p50s.append(float(p50))
        self.p90s.append(float(p90))
        self.calls += len(times)

    def settled(self, runs: int) -> bool:
        if self.calls < runs:
            return False
        return all(_quiet(np.asarray(v)).sum() >= QUIET_ROUNDS for v in (self.p50s, self.p90s))

    def summary(self, runs: int, threads: int, warmup: int) -> dict[str, float | int | bool | str]:
        every = np.concatenate(self.times)
        p50s, p90s = np.asarray(self.p50s), np.asarray(self.p90s)
        quiet50, quiet90 = _quiet(p50s), _quiet(p90s)
        p50 = float(np.median(p50s[quiet50]))
        return {"p50": round(p50, 4), "p90": round(float(np.median(p90s[quiet90])), 4),
                "mean": round(float(every.mean()), 4), "min": round(float(every.min()), 4),
                "runs": len(every), "rounds": len(self.times), "quiet_rounds": int(min(quiet50.sum(), quiet90.sum())),
                "settled": self.settled(runs), "noise_pct": round(100 * max(0.0, float(np.median(p50s)) / p50 - 1), 1),
                "statistic": STATISTIC, "warmup": warmup, "threads": threads, "batch": 1}


def _summary(rounds: list[np.ndarray], runs: int, threads: int, warmup: int) -> dict[str, float | int | bool | str]:
    """The summary of rounds already timed (as measure_interleaved gives it)."""
    collected = _Rounds()
    for times in rounds:
        collected.add(times)
    return collected.summary(runs, threads, warmup)
