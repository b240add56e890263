"""The accuracy goal's fallback in the reports: which layers the INT8 files keep float, the score they reached,
and what those layers cost in size and in target latency against the fully integer .tflite."""

from __future__ import annotations

from typing import Any

from edgekit.estimate.target_estimate import Calibration, estimate

TFLITE_INT8 = "model_int8.tflite"
TOLERANCE = 1e-9  # scores are fractions of whole images: equal to the goal up to float rounding meets it


def kept_float_section(kept: dict[str, Any] | None, artifacts: list[dict[str, Any]], cal: Calibration | None,
                       threads: int) -> dict[str, Any] | None:
    """report.json's ``kept_float``, from the export stage's record; None when no accuracy goal was set."""
    if not kept:
        return None
    section = {k: kept[k] for k in ("goal", "fp32", "metric", "split", "ranking_split", "max_drop", "accuracy_budget",
                                    "int8_before", "int8_after", "met", "kept_float", "layers", "limit",
                                    "own_sqnr_db", "seconds")}
    final = next((a for a in artifacts if a["name"] == TFLITE_INT8 and a["status"] == "ok"), None)
    integer = kept.get("integer_file") or {}
    cost: dict[str, Any] = {"bytes_integer": integer.get("bytes"), "bytes": final["bytes"] if final else None}
    if cal is not None and integer.get("graph") and final and final.get("target_estimate"):
        cost["estimate_ms_integer"] = round(estimate(integer["graph"], cal, threads)["ms"], 3)
        cost["estimate_ms"] = round(final["target_estimate"]["ms"], 3)
    section["cost"] = cost
    return section


def goal_failures(section: dict[str, Any] | None, artifacts: list[dict[str, Any]]) -> list[str]:
    """Exit-1 lines: an INT8 file below the goal as the benchmark measured it, or a goal the fallback gave up on."""
    if not section:
        return []
    key, goal = section["metric"], section["goal"]
    lines = [f"accuracy goal failed: {a['name']} {key} {100 * a[key]:.2f} % < goal {100 * goal:.2f} %"
             for a in artifacts if a.get("precision") == "int8" and a.get(key) is not None and a[key] < goal - TOLERANCE]
    if not section["met"]:
        lines.append(f"accuracy goal failed: keeping {len(section['kept_float'])} of {section['layers']} layers float "
                     f"(the limit, a quarter) took {TFLITE_INT8} to {100 * section['int8_after']:.2f} %, goal "
                     f"{100 * goal:.2f} %; quantize with QAT (--quant-method qat) or relax --max-drop")
    return lines


def kept_float_lines(section: dict[str, Any] | None) -> list[str]:
    """report.md's section."""
    if not section:
        return []
    kept, cost, key = section["kept_float"], section["cost"], section["metric"]
    goal = f"goal {100 * section['goal']:.2f} % on `{section['split']}`"
    if section["max_drop"] is not None:
        goal += f" (FP32 student {100 * section['fp32']:.2f} % minus {section['max_drop']:g} points)"
    lines = ["## Layers kept float", f"INT8 {key} {goal}: {TFLITE_INT8} "
             f"{100 * section['int8_before']:.2f} % fully integer, {100 * section['int8_after']:.2f} % with "
             f"{len(kept)} of {section['layers']} layers kept float ({'met' if section['met'] else 'MISSED'}; "
             f"ranked on `{section['ranking_split']}`, at most {section['limit']} layers)."]
    if kept:
        lines.append(", ".join(f"`{layer}` (own SQNR {section['own_sqnr_db'][layer]:.1f} dB)" for layer in kept)
                     + ": float weights and a float output; the layers reading it compute in float too.")
        size = (f"size {cost['bytes_integer'] / 1024:.0f} -> {cost['bytes'] / 1024:.0f} KiB"
                if cost.get("bytes") and cost.get("bytes_integer") else "")
        latency = (f"estimated target latency {cost['estimate_ms_integer']:.2f} -> {cost['estimate_ms']:.2f} ms"
                   if "estimate_ms" in cost else "")
        if size or latency:
            lines.append("Cost against the fully integer file: " + "; ".join(p for p in (size, latency) if p) + ".")
    return lines
