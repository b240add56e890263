"""Operator costs to milliseconds on a target, with coefficients fitted to the target's published figures.

    t(n threads) = [ dense_MACs / a_p + depthwise_MACs / d_p + float_dense_MACs / a_fp32 + float_depthwise_MACs / d_fp32
                     + other_bytes / b ] / (f * S(n))
                   + (memory_bytes / m + weight_bytes / w + spilled_weight_bytes / s + nms_elements / n) / f
                   + ops * o / f,                                                      S(n) = 1 + e * (min(n, cores) - 1)

f is the clock, a_p the dense MACs per cycle per core at precision p (fp32 or int8), d_p the same for
depthwise convolution (memory bound, and INT8 gains far less there than in dense layers), b the bytes per cycle of
elementwise/pooling/data/quantize operators (and s for the weights of dense layers too big for the last-level
cache, which are read again for every tile of output rows), e the gain of each extra thread, m the bytes per cycle of the
memory traffic that more threads do not speed up (every operator's activations and weights: why FP32
gains less from threads than INT8 on a Raspberry Pi), and o a fixed number of cycles per operator (dispatch and the
thread pool's fork/join: instructions, so counted in cycles and a faster clock runs them faster). The float_* terms
are the convolutions an INT8 ONNX file keeps in float between DequantizeLinear and QuantizeLinear.

The prior (the centre the fit starts from and is pulled back to) comes from the profile's hardware facts only
(``[estimate]``: SIMD width, FMA and load pipes, peak MACs per cycle, DRAM bandwidth; each with its source in
``[estimate.sources]``), never from latency figures; see ``prior``. The facts also bound the fit: no coefficient may
beat the core's peak (MACs per cycle) or its load bandwidth (bytes per cycle). The eleven coefficients are fitted in
log space to the profile's published latencies. The error is stated two ways: leave-one-figure-out (each figure
predicted by a fit to all the others) and leave-one-network-out (every figure of a network predicted by a fit to the
other networks' figures only: what a user's network, never among the fitted ones, can expect).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgekit.estimate.features import CostFeatures

PARAMS = ("a_fp32", "a_int8", "d_fp32", "d_int8", "b", "e", "o", "m", "w", "n", "s")
# Prior spread in natural-log units: how far the data may move each coefficient from its prior.
PRIOR_SIGMA = np.array([0.7, 0.7, 1.0, 1.0, 1.5, 1.0, 1.5, 1.5, 1.5, 1.5, 1.5])
FIGURE_SIGMA = 0.1  # a published figure is trusted to about 10 %
_START_SHIFTS = [np.array(v, dtype=float) for v in (
    [-1, -1, 0, 0, 0, -1, 0, 0, 0, 0, 0], [-1, 0, -1, -1, 0, 0, 0, 0, 0, 0, 1], [0, -1, 0, -1, -1, -1, 0, -1, 0, 0, -1],
    [-1, -0.5, -0.5, -0.5, -0.5, -0.5, 0, -0.5, 0, 0, 0])]
# The two priors that are not hardware facts, the same on every target and never fitted to any figure:
# near-linear thread scaling (the cores are independent; 0.9, not 1, keeps the logit finite), and the cycles a
# runtime spends per operator outside its arithmetic (dispatch, fork/join), an order of magnitude, not a measurement.
THREAD_GAIN_PRIOR = 0.9
OVERHEAD_CYCLES_PRIOR = 1000.0
# Facts every calibrated profile states in [estimate], each with a source in [estimate.sources].
FACTS = ("fp32_macs_per_cycle", "int8_macs_per_cycle", "vector_bits", "load_ports", "dram_gb_s", "cache_kb")


@dataclass(frozen=True)
class Hardware:
    clock_hz: float
    cores: int
    fp32_peak: float   # MACs per cycle per core
    int8_peak: float
    cache_bytes: float = 1 << 20  # last-level cache
    vector_bits: int = 128        # SIMD register width the kernels use
    load_ports: int = 1           # vector loads issued per cycle
    dram_bytes_per_s: float = 8e9

    @property
    def lanes32(self) -> float:
        return self.vector_bits / 32

    @property
    def load_bytes_per_cycle(self) -> float:
        return self.vector_bits / 8 * self.load_ports

    @property
    def dram_bytes_per_cycle(self) -> float:
        return self.dram_bytes_per_s / self.clock_hz


def hardware_of(profile: dict[str, Any]) -> Hardware:
    cpu, est = profile["cpu"], profile.get("estimate", {})
    return Hardware(clock_hz=float(cpu["clock_ghz"]) * 1e9, cores=int(cpu["cores"]),
                    fp32_peak=float(est.get("fp32_macs_per_cycle", 8)), int8_peak=float(est.get("int8_macs_per_cycle", 16)),
                    cache_bytes=1024.0 * float(est.get("cache_kb", 1024)), vector_bits=int(est.get("vector_bits", 128)),
                    load_ports=int(est.get("load_ports", 1)), dram_bytes_per_s=1e9 * float(est.get("dram_gb_s", 8)))


def prior_values(hw: Hardware) -> dict[str, float]:
    """The prior of each coefficient, and the hardware fact it comes from (see the module docstring)."""
    dram = hw.dram_bytes_per_cycle
    # Depthwise: no weight reuse across output channels, so each vector multiply-accumulate needs an input and a
    # weight vector load; it runs at the load ports' rate on 32-bit accumulator lanes, at either precision.
    depthwise = hw.lanes32 * hw.load_ports / 2
    return {"a_fp32": hw.fp32_peak, "a_int8": hw.int8_peak, "d_fp32": depthwise, "d_int8": depthwise,
            "b": dram, "e": THREAD_GAIN_PRIOR, "o": OVERHEAD_CYCLES_PRIOR, "m": dram, "w": dram,
            "n": 1.0,  # decode/NMS: scalar float, one element per cycle
            "s": dram}


PRIOR_BASIS = {
    "a_fp32": "fp32_macs_per_cycle (SIMD lanes x FMA pipes)", "a_int8": "int8_macs_per_cycle",
    "d_fp32": "vector_bits / 32 x load_ports / 2", "d_int8": "vector_bits / 32 x load_ports / 2",
    "b": "dram_gb_s / clock", "e": f"{THREAD_GAIN_PRIOR} (near-linear; not a hardware fact)",
    "o": f"{OVERHEAD_CYCLES_PRIOR:g} cycles per operator (not a hardware fact)", "m": "dram_gb_s / clock",
    "w": "dram_gb_s / clock", "n": "1 element per cycle (scalar)", "s": "dram_gb_s / clock"}


def _to_theta(values: dict[str, float]) -> np.ndarray:
    v = [values[k] for k in PARAMS]
    v[5] = v[5] / (1 - v[5])  # e stored as a logit so that it stays in (0, 1)
    return np.log(v)


def prior(hw: Hardware) -> np.ndarray:
    """Natural logs of the prior coefficients; e is stored as a logit so that it stays in (0, 1)."""
    return _to_theta(prior_values(hw))


def bounds(hw: Hardware) -> tuple[np.ndarray, np.ndarray]:
    """Hard limits of the fit from the hardware: no kernel beats the peak MACs per cycle, no byte stream the load
    ports' bytes per cycle."""
    upper = np.full(len(PARAMS), np.inf)
    for i, name in enumerate(PARAMS):
        if name in ("a_fp32", "d_fp32"):
            upper[i] = np.log(hw.fp32_peak)
        elif name in ("a_int8", "d_int8"):
            upper[i] = np.log(hw.int8_peak)
        elif name in ("b", "m", "w", "s"):
            upper[i] = np.log(hw.load_bytes_per_cycle)
    return np.full(len(PARAMS), -np.inf), upper


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
    parallel = (f.dense_macs / a + f.depthwise_macs / d + f.float_dense_macs / p["a_fp32"]
                + f.float_depthwise_macs / p["d_fp32"] + f.other_bytes / p["b"]) / clock
    speedup = 1 + p["e"] * (min(threads, hw.cores) - 1)
    serial = (f.memory_bytes / p["m"] + f.weight_bytes / p["w"] + f.postprocess_elements / p["n"]
              + f.spill_bytes(hw.cache_bytes) / p["s"] + f.ops * p["o"]) / clock
    return parallel / speedup + serial


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


def _clock(fig: Figure) -> float | None:
    return fig.clock_ghz * 1e9 if fig.clock_ghz else None


def fit(hw: Hardware, figures: list[Figure], features: dict[str, CostFeatures]) -> np.ndarray:
    from scipy.optimize import least_squares

    centre = prior(hw)
    low, high = bounds(hw)
    cases = [(features[fig.model].with_precision(fig.precision), fig) for fig in figures]

    def residuals(theta: np.ndarray) -> np.ndarray:
        fits = [np.log(predict_seconds(theta, hw, f, fig.threads, _clock(fig)) / (fig.ms / 1e3)) / FIGURE_SIGMA
                for f, fig in cases]
        return np.concatenate([np.array(fits), (theta - centre) / PRIOR_SIGMA])

    # The problem is not convex: start from the prior and from a few spread points, keep the best fit.
    inside = lambda t: np.minimum(t, high - 1e-6)  # noqa: E731 - the prior may sit on a bound (peak MACs)
    starts = [inside(centre)] + [inside(centre + PRIOR_SIGMA * shift) for shift in _START_SHIFTS]
    best = min((least_squares(residuals, start, method="trf", bounds=(low, high)) for start in starts),
               key=lambda r: r.cost)
    return best.x


def _row(theta: np.ndarray, hw: Hardware, fig: Figure, features: dict[str, CostFeatures]) -> dict[str, Any]:
    ms = 1e3 * predict_seconds(theta, hw, features[fig.model].with_precision(fig.precision), fig.threads, _clock(fig))
    return {"model": fig.model, "precision": fig.precision, "threads": fig.threads, "published_ms": fig.ms,
            "estimate_ms": round(ms, 3), "error": round(ms / fig.ms - 1, 4), "source": fig.source}


def leave_one_out(hw: Hardware, figures: list[Figure], features: dict[str, CostFeatures]) -> list[dict[str, Any]]:
    """Each figure predicted by a fit to all the others (leave-one-figure-out)."""
    return [_row(fit(hw, figures[:i] + figures[i + 1:], features), hw, fig, features) for i, fig in enumerate(figures)]


def leave_one_network_out(hw: Hardware, figures: list[Figure], features: dict[str, CostFeatures]
                          ) -> list[dict[str, Any]]:
    """Every figure of each network predicted by a fit to the other networks' figures only: the error a network
    that is not among the fitted ones (a user's) can expect. Rows in the order of ``figures``."""
    thetas = {model: fit(hw, [f for f in figures if f.model != model], features)
              for model in dict.fromkeys(f.model for f in figures)}
    return [_row(thetas[fig.model], hw, fig, features) for fig in figures]
