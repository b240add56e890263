"""Host latency: warm up, then time single-image calls and report percentiles.

Sub-millisecond models need many calls for a stable p90, so the loop runs for at least ``min_seconds``
as well as at least ``runs`` calls (as TFLite's benchmark_model does with its minimum duration).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

WARMUP = 10
MIN_SECONDS = 1.0
MAX_RUNS = 100_000


def measure(call: Callable[[], object], runs: int, threads: int, warmup: int = WARMUP,
            min_seconds: float = MIN_SECONDS) -> dict[str, float | int]:
    for _ in range(warmup):
        call()
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < runs or (time.perf_counter() - started < min_seconds and len(times) < MAX_RUNS):
        start = time.perf_counter_ns()
        call()
        times.append((time.perf_counter_ns() - start) / 1e6)
    t = np.asarray(times)
    return {"p50": round(float(np.percentile(t, 50)), 4), "p90": round(float(np.percentile(t, 90)), 4),
            "mean": round(float(t.mean()), 4), "min": round(float(t.min()), 4), "runs": len(t),
            "warmup": warmup, "threads": threads, "batch": 1}
