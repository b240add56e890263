"""Host latency: warm up, then time single-image calls and report percentiles."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

WARMUP = 10


def measure(call: Callable[[], object], runs: int, threads: int, warmup: int = WARMUP) -> dict[str, float | int]:
    for _ in range(warmup):
        call()
    times = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter_ns()
        call()
        times[i] = (time.perf_counter_ns() - start) / 1e6
    return {"p50": round(float(np.percentile(times, 50)), 4), "p90": round(float(np.percentile(times, 90)), 4),
            "mean": round(float(times.mean()), 4), "min": round(float(times.min()), 4), "runs": runs,
            "warmup": warmup, "threads": threads, "batch": 1}
