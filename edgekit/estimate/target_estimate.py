"""A target profile's calibration (fit + leave-one-out band) and the estimate for one artifact."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from edgekit.estimate.cost_model import Figure, Hardware, fit, hardware_of, leave_one_out, predict_seconds
from edgekit.estimate.features import features_of
from edgekit.estimate.op_costs import CONV, FULLY_CONNECTED
from edgekit.estimate.reference_costs import reference_features, reference_summaries


@dataclass(frozen=True)
class Calibration:
    target: str
    runtime: str      # the runtimes the published figures were measured in
    hw: Hardware
    theta: np.ndarray
    loo: list[dict[str, Any]]

    @property
    def median_error(self) -> float:
        return float(np.median([abs(r["error"]) for r in self.loo]))

    @property
    def worst_error(self) -> float:
        return float(max(abs(r["error"]) for r in self.loo))

    def method(self) -> str:
        return (f"graph cost model (MACs and bytes per operator kind) with coefficients fitted to {len(self.loo)} "
                f"published {self.runtime} figures for {self.target}; band = worst leave-one-out error "
                f"({100 * self.worst_error:.0f} %; median {100 * self.median_error:.0f} %)")


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
    return Calibration(target=profile["name"], runtime=runtimes, hw=hw,
                       theta=fit(hw, figures, features), loo=leave_one_out(hw, figures, features))


def estimate(summary: dict[str, Any], cal: Calibration, threads: int) -> dict[str, Any]:
    """Estimated latency of one artifact on the target, its band, and where the time goes per operator kind."""
    # The model is linear in its features, so each operator kind's share is the model applied to that kind alone.
    # Dense layers whose weights overflow the cache are charged to convolutions (or, without any, to the FC layers).
    spill_kind = CONV if CONV in summary["kinds"] else FULLY_CONNECTED
    by_kind = {kind: 1e3 * predict_seconds(cal.theta, cal.hw, features_of(
                   {"kinds": {kind: k}, "ops": k["ops"], "precision": summary["precision"],
                    "dense_layers": summary.get("dense_layers", []) if kind == spill_kind else []}), threads)
               for kind, k in summary["kinds"].items()}
    ms = float(sum(by_kind.values()))
    band = cal.worst_error
    smallest = min(s["macs"] for s in reference_summaries().values())
    return {"ms": round(ms, 4), "low_ms": round(ms * (1 - band), 4), "high_ms": round(ms * (1 + band), 4),
            "band_pct": round(100 * band, 1), "median_loo_error_pct": round(100 * cal.median_error, 1),
            "threads": threads, "precision": summary["precision"], "macs": summary["macs"],
            "method": cal.method(), "breakdown_ms": {k: round(v, 4) for k, v in by_kind.items()},
            "calibrated_range": summary["macs"] >= smallest / 10,
            "note": None if summary["macs"] >= smallest / 10 else
            f"{summary['macs'] / 1e6:.1f} M MACs is far below the smallest calibration network "
            f"({smallest / 1e6:.0f} M): fixed per-operator costs dominate and the band may not hold"}
