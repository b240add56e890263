"""The choice: the candidate with the most MACs whose estimate, widened by the target's band, fits the budgets.

``margin`` scales how much of the band is charged: 1 (the default) asks that the estimate's upper end fit the
budget, 0 that the estimate itself does. A ``size_mb`` budget is checked on the INT8 file size each candidate
will have. No candidate fitting is the caller's exit 2, with the closest one named.
"""

from __future__ import annotations

from typing import Any


def charged_ms(row: dict[str, Any], margin: float) -> float:
    return row["estimate_ms"] * (1 + margin * row["band_pct"] / 100)


def pick_student(rows: list[dict[str, Any]], latency_ms: float | None, size_mb: float | None,
                 margin: float = 1.0) -> dict[str, Any] | None:
    """Mark every row ``fits`` and ``why`` (why not, or chosen); return the chosen row, or None."""
    for row in rows:
        charged = charged_ms(row, margin)
        reasons = []
        if latency_ms is not None and charged > latency_ms:
            reasons.append(f"over: {charged:.2f} ms with band > {latency_ms:g} ms")
        if size_mb is not None and row["int8_bytes"] / 1e6 > size_mb:
            reasons.append(f"over: {row['int8_bytes'] / 1e6:.2f} MB > {size_mb:g} MB")
        row["charged_ms"] = round(charged, 4)
        row["fits"] = not reasons
        row["why"] = "; ".join(reasons)
    fitting = [r for r in rows if r["fits"]]
    if not fitting:
        return None
    # most MACs; ties (same network at the same size) go to the smaller file, then the faster estimate
    chosen = max(fitting, key=lambda r: (r["macs"], -r["int8_bytes"], -r["estimate_ms"]))
    for row in fitting:
        row["why"] = "CHOSEN: the most MACs that fit" if row is chosen else \
            "fits; fewer MACs" if row["macs"] < chosen["macs"] else "fits; lost a tie"
    return chosen


def closest(rows: list[dict[str, Any]], latency_ms: float | None, size_mb: float | None) -> dict[str, Any]:
    """The row that misses the budgets by the smallest factor (for the message when none fits)."""
    def miss(row: dict[str, Any]) -> float:
        over = [row["charged_ms"] / latency_ms] if latency_ms else []
        over += [row["int8_bytes"] / 1e6 / size_mb] if size_mb else []
        return max(over or [0.0])

    return min(rows, key=miss)
