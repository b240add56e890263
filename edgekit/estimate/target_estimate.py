"""A target profile's calibration (fit, leave-one-figure-out and leave-one-network-out errors, a band per precision)
and the estimate for one artifact."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from edgekit.estimate.cost_model import (Figure, Hardware, fit, hardware_of, leave_one_network_out, leave_one_out,
                                         predict_seconds)
from edgekit.estimate.features import features_of
from edgekit.estimate.op_costs import CONV, FULLY_CONNECTED
from edgekit.estimate.reference_costs import reference_features, reference_summaries

INT8_EXTRAPOLATED = "INT8 extrapolated from FP32 figures"
# A network this many times smaller (in MACs) than the smallest fitted one is outside the fitted range.
OUTSIDE_RANGE = 10


def _worst(rows: list[dict[str, Any]]) -> float | None:
    return float(max(abs(r["error"]) for r in rows)) if rows else None


def _median(rows: list[dict[str, Any]]) -> float | None:
    return float(np.median([abs(r["error"]) for r in rows])) if rows else None


@dataclass(frozen=True)
class Calibration:
    target: str
    runtime: str      # the runtimes the published figures were measured in
    hw: Hardware
    theta: np.ndarray
    loo: list[dict[str, Any]]    # leave-one-figure-out rows
    lono: list[dict[str, Any]]   # leave-one-network-out rows, in the same order

    @property
    def median_error(self) -> float:
        return float(_median(self.loo))

    @property
    def worst_error(self) -> float:
        return float(_worst(self.loo))

    @property
    def median_network_error(self) -> float:
        return float(_median(self.lono))

    @property
    def worst_network_error(self) -> float:
        return float(_worst(self.lono))

    def precisions(self) -> list[str]:
        return sorted({r["precision"] for r in self.loo})

    def band(self, precision: str) -> float | None:
        """Worst leave-one-network-out error over this precision's figures; None when the target has none."""
        return _worst([r for r in self.lono if r["precision"] == precision])

    def smallest_network(self) -> tuple[str, float]:
        macs = {r["model"]: reference_summaries()[r["model"]]["macs"] for r in self.loo}
        name = min(macs, key=macs.get)
        return name, float(macs[name])

    def method(self) -> str:
        bands = "; ".join(f"{p.upper()} {100 * self.band(p):.0f} %" for p in self.precisions())
        return (f"graph cost model (MACs and bytes per operator kind) with coefficients fitted to {len(self.loo)} "
                f"published {self.runtime} figures of {len({r['model'] for r in self.loo})} networks for {self.target}, "
                f"prior from the profile's hardware facts; band = worst leave-one-out error by network, per precision "
                f"({bands}); leave-one-out by network (every figure of the network left out) median "
                f"{100 * self.median_network_error:.0f} % / worst {100 * self.worst_network_error:.0f} %, by figure "
                f"median {100 * self.median_error:.0f} % / worst {100 * self.worst_error:.0f} %")

    def rows(self) -> list[dict[str, Any]]:
        """The profile's table: each figure with its leave-one-figure-out and leave-one-network-out estimates."""
        return [dict(r, network_out_estimate_ms=n["estimate_ms"], network_out_error=n["error"])
                for r, n in zip(self.loo, self.lono)]


def figures_of(profile: dict[str, Any]) -> list[Figure]:
    return [Figure(model=f["model"], precision=f["precision"], threads=int(f["threads"]), ms=float(f["ms"]),
                   source=f["source"], clock_ghz=f.get("clock_ghz"), runtime=f.get("runtime", "tflite-xnnpack"))
            for f in profile.get("published", [])]


def calibrate(profile: dict[str, Any]) -> Calibration | None:
    """None when the profile has too few published figures to fit and test (a measured-only target)."""
    return _calibrate(json.dumps(profile, sort_keys=True))


@lru_cache(maxsize=16)
def _calibrate(profile_json: str) -> Calibration | None:
    profile = json.loads(profile_json)
    figures = figures_of(profile)
    if len(figures) < 3:
        return None
    hw, features = hardware_of(profile), reference_features()
    runtimes = ", ".join(sorted({f.runtime for f in figures}))
    return Calibration(target=profile["name"], runtime=runtimes, hw=hw, theta=fit(hw, figures, features),
                       loo=leave_one_out(hw, figures, features), lono=leave_one_network_out(hw, figures, features))


@lru_cache(maxsize=1)
def int8_extrapolation() -> dict[str, dict[str, Any]]:
    """How far INT8 lands when a target's fit sees its FP32 figures only: for each packaged target that has both,
    its INT8 figures predicted by a fit to its FP32 figures alone. What a target without INT8 figures can expect
    from its INT8 estimate (measured on other devices, not on that one)."""
    from edgekit.estimate.target_profiles import load_target, target_names

    out = {}
    for name in target_names():
        profile = load_target(name)
        figures = figures_of(profile)
        fp32 = [f for f in figures if f.precision == "fp32"]
        int8 = [f for f in figures if f.precision == "int8"]
        if len(fp32) < 3 or not int8:
            continue
        hw, features = hardware_of(profile), reference_features()
        theta = fit(hw, fp32, features)
        rows = []
        for f in int8:
            ms = 1e3 * predict_seconds(theta, hw, features[f.model].with_precision("int8"), f.threads,
                                       f.clock_ghz and f.clock_ghz * 1e9)
            rows.append({"model": f.model, "threads": f.threads, "published_ms": f.ms, "estimate_ms": round(ms, 3),
                         "error": round(ms / f.ms - 1, 4)})
        out[name] = {"rows": rows, "median_abs_error": round(float(_median(rows)), 4),
                     "worst_abs_error": round(float(_worst(rows)), 4)}
    return out


def band_for(cal: Calibration, precision: str) -> tuple[float, str]:
    """The band an estimate at this precision carries, and how it was measured."""
    band = cal.band(precision)
    if band is not None:
        return band, (f"band = worst leave-one-out error by network on {cal.target}'s {precision.upper()} figures "
                      f"({100 * band:.0f} %)")
    checks = int8_extrapolation() if precision == "int8" else {}
    if checks:
        worst = max(c["worst_abs_error"] for c in checks.values())
        where = ", ".join(f"{n} {100 * c['worst_abs_error']:.0f} %" for n, c in checks.items())
        return worst, (f"{INT8_EXTRAPOLATED}: {cal.target} has no {precision.upper()} figure, so no measured band; "
                       f"± is the worst error of the same extrapolation where INT8 figures exist ({where}), "
                       f"not a measurement on {cal.target}")
    raise ValueError(f"{cal.target} has no {precision} figure and no extrapolation check")


def estimate(summary: dict[str, Any], cal: Calibration, threads: int) -> dict[str, Any]:
    """Estimated latency of one artifact on the target, its band, and where the time goes per operator kind."""
    # The model is linear in its features, so each operator kind's share is the model applied to that kind alone.
    # Dense layers whose weights overflow the cache are charged to convolutions (or, without any, to the FC layers).
    spill_kind = CONV if CONV in summary["kinds"] else FULLY_CONNECTED
    float_macs = summary.get("float_macs", {})
    by_kind = {kind: 1e3 * predict_seconds(cal.theta, cal.hw, features_of(
                   {"kinds": {kind: k}, "ops": k["ops"], "precision": summary["precision"],
                    "float_macs": {kind: float_macs[kind]} if kind in float_macs else {},
                    "dense_layers": summary.get("dense_layers", []) if kind == spill_kind else []}), threads)
               for kind, k in summary["kinds"].items()}
    ms = float(sum(by_kind.values()))
    precision = summary["precision"]
    band, how = band_for(cal, precision)
    method = cal.method() + "; this estimate: " + how
    notes = []
    if precision not in cal.precisions():
        notes.append(how)
    if float_macs:
        notes.append(f"{sum(float_macs.values()) / max(summary['macs'], 1):.0%} of this INT8 file's MACs run in float "
                     "between DequantizeLinear and QuantizeLinear, plus "
                     f"{summary['kinds'].get('quantize', {}).get('ops', 0)} quantize/dequantize operators: estimated "
                     "as the graph holds them (a runtime that fuses QDQ pairs on the device runs faster)")
    smallest_name, smallest = cal.smallest_network()
    inside = summary["macs"] >= smallest / OUTSIDE_RANGE
    if not inside:
        rows = [r for r in cal.lono if r["model"] == smallest_name]
        notes.append(f"{summary['macs'] / 1e6:.1f} M MACs is {smallest / max(summary['macs'], 1):.0f}x below the "
                     f"smallest network fitted for {cal.target} ({smallest_name}, {smallest / 1e6:.0f} M): the band "
                     f"is not measured this far out; fitted without it, {smallest_name} itself was predicted within "
                     f"{100 * _worst(rows):.0f} %, and fixed per-operator costs dominate networks this small")
    return {"ms": round(ms, 4), "low_ms": round(ms * (1 - min(band, 0.99)), 4), "high_ms": round(ms * (1 + band), 4),
            "band_pct": round(100 * band, 1), "band_measured": precision in cal.precisions(),
            "median_loo_error_pct": round(100 * cal.median_error, 1),
            "median_network_out_error_pct": round(100 * cal.median_network_error, 1),
            "threads": threads, "precision": precision, "macs": summary["macs"],
            "method": method, "breakdown_ms": {k: round(v, 4) for k, v in by_kind.items()},
            "calibrated_range": inside, "note": "; ".join(notes) or None}
