"""Operator costs to milliseconds on a target, with coefficients fitted to the target's published figures.

    t(n threads) = [ dense_MACs / a_p + depthwise_MACs / d_p + other_bytes / b ] / (f * S(n))
                   + (memory_bytes / m + weight_bytes / w + spilled_weight_bytes / s + nms_elements / n) / f + ops * o,          S(n) = 1 + e * (min(n, cores) - 1)

f is the clock, a_p the dense MACs per cycle per core at precision p (fp32 or int8), d_p the same for
depthwise convolution (memory bound, and INT8 gains far less there than in dense layers), b the bytes per cycle of
elementwise/pooling/data operators (and s for the weights of dense layers too big for the last-level
cache, which are read again for every tile of output rows), e the gain of each extra thread, m the bytes per cycle of the
memory traffic that more threads do not speed up (every operator's activations and weights: why FP32
gains less from threads than INT8 on a Raspberry Pi), and o a fixed cost per operator.

The eleven coefficients are fitted in log space to the profile's published latencies, with a weak prior
from the core's peak MACs per cycle (so that a target with few figures still gets a physical answer:
for example INT8 on a core without dot product is not assumed 4x faster than FP32). The error band
is leave-one-out: each published figure is predicted by a fit to all the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgekit.estimate.features import CostFeatures

PARAMS = ("a_fp32", "a_int8", "d_fp32", "d_int8", "b", "e", "o", "m", "w", "n", "s")
# Prior spread in natural-log units: how far the data may move each coefficient from its prior.
PRIOR_SIGMA = np.array([0.7, 0.7, 0.7, 0.7, 1.0, 1.0, 1.5, 1.5, 1.5, 1.5, 1.0])
FIGURE_SIGMA = 0.1  # a published figure is trusted to about 10 %
_START_SHIFTS = [np.array(v, dtype=float) for v in (
    [-1, -1, 0, 0, 0, -1, 0, 0, 0, 0, 0], [-1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 1], [0, 1, 0, -1, -1, -1, 0, -1, 0, 0, -1],
    [-1, 0.5, 0.5, 0.5, 0.5, -0.5, 0, 0.5, 0, 0, 0])]


@dataclass(frozen=True)
class Hardware:
    clock_hz: float
    cores: int
    fp32_peak: float   # MACs per cycle per core
    int8_peak: float
    cache_bytes: float = 1 << 20  # last-level cache


def hardware_of(profile: dict[str, Any]) -> Hardware:
    cpu, est = profile["cpu"], profile.get("estimate", {})
    return Hardware(clock_hz=float(cpu["clock_ghz"]) * 1e9, cores=int(cpu["cores"]),
                    fp32_peak=float(est.get("fp32_macs_per_cycle", 8)), int8_peak=float(est.get("int8_macs_per_cycle", 16)),
                    cache_bytes=1024.0 * float(est.get("cache_kb", 1024)))


def prior(hw: Hardware) -> np.ndarray:
    """Natural logs of the prior coefficients; e is stored as a logit so that it stays in (0, 1)."""
    e = 0.8
    depthwise = 0.1 * hw.fp32_peak  # memory bound at either precision: int8 gains little without wider loads
    return np.log([0.45 * hw.fp32_peak, 0.45 * hw.int8_peak, depthwise, depthwise, 2.0, e / (1 - e), 2e-6, 8.0, 2.0, 0.5, 2.0])


def unpack(theta: np.ndarray) -> dict[str, float]:
    values = np.exp(theta)
    out = dict(zip(PARAMS, values.tolist()))
    out["e"] = values[5] / (1 + values[5])
    return out


def predict_seconds(theta: np.ndarray, hw: Hardware, f: CostFeatures, threads: int, clock_hz: float | None = None
                    ) -> float:
    p = unpack(theta)
    clock = clock_hz or hw.clock_hz
    a, d = (p["a_int8"], p["d_int8"]) if f.precision == "int8" else (p["a_fp32"], p["d_fp32"])
    parallel = (f.dense_macs / a + f.depthwise_macs / d + f.other_bytes / p["b"]) / clock
    speedup = 1 + p["e"] * (min(threads, hw.cores) - 1)
    serial = (f.memory_bytes / p["m"] + f.weight_bytes / p["w"] + f.postprocess_elements / p["n"]
              + f.spill_bytes(hw.cache_bytes) / p["s"]) / clock
    return parallel / speedup + serial + f.ops * p["o"]


@dataclass(frozen=True)
class Figure:
    """One published latency: a reference network at a precision and thread count."""
    model: str
    precision: str
    threads: int
    ms: float
    source: str
    clock_ghz: float | None = None
    runtime: str = "tflite-xnnpack"


def fit(hw: Hardware, figures: list[Figure], features: dict[str, CostFeatures]) -> np.ndarray:
    from scipy.optimize import least_squares

    centre = prior(hw)
    cases = [(features[fig.model].with_precision(fig.precision), fig) for fig in figures]

    def residuals(theta: np.ndarray) -> np.ndarray:
        fits = [np.log(predict_seconds(theta, hw, f, fig.threads, fig.clock_ghz and fig.clock_ghz * 1e9)
                       / (fig.ms / 1e3)) / FIGURE_SIGMA for f, fig in cases]
        return np.concatenate([np.array(fits), (theta - centre) / PRIOR_SIGMA])

    # The problem is not convex: start from the prior and from a few spread points, keep the best fit.
    starts = [centre] + [centre + PRIOR_SIGMA * shift for shift in _START_SHIFTS]
    best = min((least_squares(residuals, start, method="trf") for start in starts), key=lambda r: r.cost)
    return best.x


def leave_one_out(hw: Hardware, figures: list[Figure], features: dict[str, CostFeatures]) -> list[dict[str, Any]]:
    """Each figure predicted by a fit to all the others: the honest error of the estimate."""
    rows = []
    for i, fig in enumerate(figures):
        theta = fit(hw, figures[:i] + figures[i + 1:], features)
        f = features[fig.model].with_precision(fig.precision)
        ms = 1e3 * predict_seconds(theta, hw, f, fig.threads, fig.clock_ghz and fig.clock_ghz * 1e9)
        rows.append({"model": fig.model, "precision": fig.precision, "threads": fig.threads, "published_ms": fig.ms,
                     "estimate_ms": round(ms, 3), "error": round(ms / fig.ms - 1, 4), "source": fig.source})
    return rows
