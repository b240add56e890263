"""How many threads each measurement uses, decided in one place.

``--threads N`` sets every count. Without it the target profile's app thread count is used on the target
(the estimate and a ``--device`` measurement), while the host times with that count capped at its cores
less one: one core stays free for the OS and the timing loop. On a 2-core machine, 2 onnxruntime threads on
a sub-millisecond model measured twice as slow as 1 thread and varied by 50 % between runs
(benchmarks/results/host_stability.md); 1 thread varied by 3 %.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ThreadCounts:
    host: int    # host latency (the benchmark stage, edgekit benchmark FILE)
    target: int  # the target estimate and --device measurements


def thread_counts(requested: int | None, target: dict[str, Any]) -> ThreadCounts:
    app = int(target["runtime"]["threads"])
    if requested:
        return ThreadCounts(host=requested, target=requested)
    return ThreadCounts(host=max(1, min(app, (os.cpu_count() or 1) - 1)), target=app)
