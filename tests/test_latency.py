"""Host latency timing: the quiet rounds set p50/p90, a busy host is flagged, and timing stops when settled."""

import time

import numpy as np

from edgekit.bench import latency


def _spin(ms: float) -> None:
    """Busy-wait on the wall clock: the same duration however busy the host is, unless preempted."""
    end = time.perf_counter() + ms / 1000
    while time.perf_counter() < end:
        pass


def test_summary_takes_the_quiet_rounds() -> None:
    rng = np.random.default_rng(0)
    quiet = [1.0 + 0.01 * rng.random(200) for _ in range(6)]
    busy = [1.9 + 0.3 * rng.random(200) for _ in range(14)]
    rounds = [r for pair in zip(quiet, busy) for r in pair] + busy[6:]
    out = latency._summary(rounds, runs=100, threads=1, warmup=0)
    assert 1.0 <= out["p50"] <= 1.01 and 1.0 <= out["p90"] <= 1.01
    assert out["quiet_rounds"] == 6 and out["settled"] is True
    assert out["noise_pct"] > 80, "the median round was a busy one, about 2x the quiet rounds"
    assert out["runs"] == 20 * 200 and out["min"] >= 1.0


def test_a_lone_lucky_round_does_not_set_the_bar() -> None:
    rounds = [np.full(50, 0.5)] + [np.full(50, 1.0)] * 7
    out = latency._summary(rounds, runs=10, threads=1, warmup=0)
    assert out["p50"] == 1.0 and out["quiet_rounds"] == 8


def test_too_few_quiet_rounds_is_not_settled() -> None:
    rounds = [np.full(50, 1.0 + 0.2 * i) for i in range(12)]  # every round slower than the last: no quiet cluster
    out = latency._summary(rounds, runs=10, threads=1, warmup=0)
    assert out["settled"] is False and out["quiet_rounds"] == 2  # the two quietest


def test_steady_model_stops_after_the_window() -> None:
    started = time.perf_counter()
    out = latency.measure_interleaved({"a": lambda: _spin(0.2), "b": lambda: _spin(0.4)}, runs=20, threads=1,
                                      warmup=2, seconds=0.3)
    elapsed = time.perf_counter() - started
    assert out["a"]["settled"] and out["b"]["settled"]
    assert 0.19 <= out["a"]["p50"] < 0.3 and 0.39 <= out["b"]["p50"] < 0.5
    assert elapsed < 0.3 * latency.BUSY_FACTOR + 0.5, "a settled measurement does not wait for the cap"


def test_a_model_that_never_settles_stops_at_the_cap() -> None:
    calls = {"n": 0}

    def drifting() -> None:  # 3 % slower every call: no two rounds alike
        calls["n"] += 1
        _spin(0.05 * 1.03 ** min(calls["n"], 200))

    started = time.perf_counter()
    out = latency.measure(drifting, runs=5, threads=1, warmup=0, seconds=0.2)
    assert time.perf_counter() - started < 0.2 * latency.BUSY_FACTOR + 1.0
    assert out["settled"] is False
