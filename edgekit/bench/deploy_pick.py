"""The "deploy this one" pick and the sentence that says why, true in every case it can meet.

The sentence names where the deciding latency comes from (estimated on the target, measured on a board,
or measured on this host: ``--device local`` and the ``host`` target measure the host, which is not the
target), claims the parity gate only for a file whose agreement was measured, and names each file left
out and why (failed to export, missed a budget, agreement below the gate).
"""

from __future__ import annotations

from typing import Any

from edgekit.export.guarded import FAILED_TO

# The agreement with its PyTorch counterpart an artifact needs to be recommended, unless the task's own gate
# is in the measurements (Task.parity_gate, tasks/*.py): top-1 agreement for a classifier.
DEFAULT_PARITY_GATE = 0.99


def latency_for_target(artifact: dict[str, Any]) -> float | None:
    """Device measurement, else the target estimate (for a measured target, the host's p50)."""
    if artifact.get("device_latency_ms"):
        return float(artifact["device_latency_ms"]["p50"])
    if artifact.get("target_estimate"):
        return float(artifact["target_estimate"]["ms"])
    return None


def _ranking_ms(artifact: dict[str, Any]) -> float:
    latency = latency_for_target(artifact)
    return latency if latency is not None else float(artifact["latency_ms"]["p50"])


def where_timed(artifact: dict[str, Any], target: str) -> str:
    """Where the latency the pick ranks by was taken, in words that stay true for ``--device local``."""
    device = artifact.get("device_latency_ms")
    if device:
        board = device.get("device", "local")
        return "measured on this host (--device local)" if board == "local" else f"measured on {board}"
    est = artifact.get("target_estimate")
    if est:
        return "measured on this host" if str(est.get("method", "")).startswith("measured on this host") \
            else f"estimated on {target}"
    if artifact.get("target_estimate_note"):  # the target has estimates, but not for this file's format
        return f"measured on this host ({artifact['target_estimate_note']})"
    return f"measured on this host ({target} has no estimate)"


def _left_out(artifact: dict[str, Any], gate: float) -> str | None:
    """Why a file cannot be picked, or None when it can."""
    if artifact["status"] != "ok":
        return f"{artifact['name']} {FAILED_TO.get(artifact.get('failed_in', ''), 'failed')}"
    marks = artifact.get("budgets") or {}
    missed = [key for key, mark in marks.items() if mark["passed"] is False]
    if missed:
        return f"{artifact['name']} misses {', '.join(missed)}"
    unchecked = [key for key, mark in marks.items() if mark["passed"] is None]
    if unchecked:
        return f"{artifact['name']} has no {', '.join(unchecked)} on the target to check"
    agreement = artifact.get("agreement")
    if agreement is not None and agreement < gate:
        return f"{artifact['name']} agreement {agreement:.3f} < {gate:g}"
    return None


def pick_deployable(artifacts: list[dict[str, Any]], runtime: str, gate: float = DEFAULT_PARITY_GATE,
                    target: str = "the target") -> dict[str, Any]:
    """The fastest artifact on the target that passes every budget and the parity gate (a file whose agreement
    was not measured is not held to it); files for the target's own runtime first, since that is the runtime
    the estimate is calibrated on. ``why`` says which rule picked it and which files were left out."""
    left_out = {a["name"]: reason for a in artifacts if (reason := _left_out(a, gate))}
    candidates = [a for a in artifacts if a["name"] not in left_out]
    excluded = "; ".join(left_out.values())
    if not candidates:
        return {"name": None, "why": f"no file passes every budget and the parity gate (agreement >= {gate:g})"
                                     + (f": {excluded}" if excluded else "")}
    # a host time never races a target figure: files with a latency on the target rank first
    best = min(candidates, key=lambda a: (a.get("runtime") != runtime, latency_for_target(a) is None,
                                          _ranking_ms(a), a["bytes"]))
    measured_gate = best.get("agreement") is not None
    rule = "every budget" + (f" and the parity gate (agreement >= {gate:g})" if measured_gate else "")
    on_target = latency_for_target(best) is not None
    ranked = [a for a in candidates if (latency_for_target(a) is not None) == on_target]
    unranked = [a["name"] for a in candidates if a not in ranked]  # passing files with host times only
    if len(artifacts) == 1:
        lead = f"the only file benchmarked, and it passes {rule}"
    elif len(candidates) == 1:
        lead = f"the only file that passes {rule}"
    elif len(ranked) == 1:
        lead = f"the only file with a latency on {target} that passes {rule}"
    else:
        lead = f"fastest of the {len(ranked)} files that pass {rule}" + (f" and have a latency on {target}"
                                                                         if unranked else "")
    parts = [f"{lead}: {_ranking_ms(best):.2f} ms {where_timed(best, target)}"]
    faster = [a for a in ranked if a.get("runtime") != runtime and _ranking_ms(a) < _ranking_ms(best)]
    if best.get("runtime") == runtime and faster:
        parts.append(f"preferred to the faster {faster[0]['name']} because the target runs {runtime}, "
                     "the runtime its estimate is calibrated on")
    if unranked:
        parts.append(f"{', '.join(unranked)} pass too but have no latency on {target} to rank by")
    if not measured_gate:
        parts.append(f"agreement with PyTorch not measured, so the parity gate (>= {gate:g}) was not checked")
    if excluded:
        parts.append(excluded)
    return {"name": best["name"], "why": "; ".join(parts)}


def deploy_rate(report: dict[str, Any]) -> str | None:
    """The picked file's speed on the target as an app developer budgets it: ms per image and frames per second."""
    name = (report.get("deploy") or {}).get("name")
    picked = next((a for a in report.get("artifacts", []) if a["name"] == name), None)
    est = (picked or {}).get("target_estimate")
    if not est or not picked.get("target_fps"):
        return None
    how = "measured" if str(est.get("method", "")).startswith("measured") else "estimated"
    return (f"on {report['target']['name']}: {est['ms']:.2f} ms per image {how} at {est['threads']} threads, "
            f"{picked['target_fps']:.1f} frames per second")
