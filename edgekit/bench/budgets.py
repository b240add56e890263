"""Budgets: limits an artifact must meet on the target, checked after the benchmark (CI exit code 1).

Sources, later ones winning per key: the target profile's ``[budgets]``, ``budget = [...]`` in
``--config``, ``--budget key=value`` flags.
"""

from __future__ import annotations

import difflib
import math
from typing import Any

from edgekit.errors import EdgekitError
from edgekit.estimate.onnx_graph import GRAPH_FORMATS

# key -> (what the artifact must do, direction). "max": value <= budget; "min": value >= budget.
BUDGET_KEYS: dict[str, tuple[str, str]] = {
    "latency_ms": ("target latency (estimate, or measured on --device) at most", "max"),
    "size_mb": ("file size in MB (10^6 bytes) at most", "max"),
    "accuracy": ("test accuracy (0..1) at least", "min"),
    "agreement": ("top-1 agreement with its PyTorch counterpart (0..1) at least", "min"),
}


def _check_value(key: str, value: Any, source: str) -> float:
    if key not in BUDGET_KEYS:
        close = difflib.get_close_matches(key, list(BUDGET_KEYS), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise EdgekitError(f"unknown budget '{key}' in {source}", f"{hint}budgets are {', '.join(BUDGET_KEYS)}")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise EdgekitError(f"budget {key} in {source} must be a positive number, got {value!r}",
                           f"write it as {key}=NUMBER")
    if key in ("accuracy", "agreement") and value > 1:
        raise EdgekitError(f"budget {key}={value} in {source} is above 1", f"write {key} as a fraction, e.g. {key}=0.95")
    return float(value)


def parse_budget_flags(items: list[str], source: str = "--budget") -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise EdgekitError(f"malformed budget '{item}' in {source}", "write it as key=value, e.g. latency_ms=30")
        try:
            value: Any = float(text)
        except ValueError:
            value = text
        out[key] = _check_value(key, value, source)
    return out


def merge_budgets(profile: dict[str, Any], items: list[str]) -> dict[str, float]:
    merged = {k: _check_value(k, v, f"target profile '{profile['name']}'") for k, v in profile.get("budgets", {}).items()}
    merged.update(parse_budget_flags(items))
    return merged


def _value(artifact: dict[str, Any], key: str) -> float | None:
    if key == "latency_ms":
        measured = artifact.get("device_latency_ms")
        if measured:
            return float(measured["p50"])
        estimate = artifact.get("target_estimate")
        return float(estimate["ms"]) if estimate else None
    if key == "size_mb":
        return artifact["bytes"] / 1e6
    value = artifact.get(key)
    return None if value is None else float(value)


def check_budgets(artifact: dict[str, Any], budgets: dict[str, float]) -> dict[str, dict[str, Any]]:
    """Per budget: the artifact's value, the limit, pass/fail and the margin (positive = missed by)."""
    marks = {}
    for key, limit in budgets.items():
        value = _value(artifact, key)
        direction = BUDGET_KEYS[key][1]
        if value is None and key == "latency_ms" and artifact.get("format") not in GRAPH_FORMATS:
            # no estimator reads this format (ExecuTorch's .pte): the budget is not checked, neither met nor
            # missed, and the file is not picked for deployment under it (deploy_pick.py)
            marks[key] = {"limit": limit, "value": None, "passed": None, "missed_by": None,
                          "why": f"not checked: {artifact.get('target_estimate_note') or 'no estimate for this format'}"
                                 "; measure it on the board with --device"}
            continue
        if value is None:
            marks[key] = {"limit": limit, "value": None, "passed": False, "missed_by": None,
                          "why": (key == "latency_ms" and artifact.get("target_estimate_note"))
                          or "not measured for this artifact"}
            continue
        missed_by = value - limit if direction == "max" else limit - value
        marks[key] = {"limit": limit, "value": round(value, 6), "passed": missed_by <= 0,
                      "missed_by": round(max(missed_by, 0.0), 6)}
    return marks


def failure_lines(report: dict[str, Any]) -> list[str]:
    lines = []
    for artifact in report["artifacts"]:
        for key, mark in artifact.get("budgets", {}).items():
            if mark["passed"] is False:  # None: not checked (no estimate for the format), not a failure
                what = mark.get("why") or f"{mark['value']:g} vs limit {mark['limit']:g}, missed by {mark['missed_by']:g}"
                lines.append(f"budget failed: {artifact['name']} {key}: {what}")
    return lines
