"""The student choice in the reports: the table of candidates made before training (stages/student_choice.py) and,
after training, the chosen student's pre-training estimate against the estimate of its INT8 file and its latency on
this host. One table layout for the console, report.md and report.html."""

from __future__ import annotations

from typing import Any

HEADER = ("Candidate", "Estimate ms", "Band", "Charged ms", "Params", "MACs", "INT8 size", "Choice")
CHECKED_FILE = "model_int8.tflite"  # the file the cost model's estimate is calibrated for


def choice_rows(section: dict[str, Any]) -> list[list[str]]:
    """One row of text per candidate, in the order they were costed."""
    return [[r["candidate"], f"{r['estimate_ms']:.2f}", f"±{r['band_pct']:.0f} %", f"{r['charged_ms']:.2f}",
             f"{r['params'] / 1e6:.2f} M", f"{r['macs'] / 1e6:.1f} M", f"{r['int8_bytes'] / 1e6:.2f} MB",
             r["why"] or ("fits" if r["fits"] else "")] for r in section["rows"]]


def choice_title(section: dict[str, Any]) -> str:
    p = section["params"]
    limits = ", ".join(f"{k}={p[k]:g}" for k in ("latency_ms", "size_mb") if p.get(k)) or "no budget (the largest)"
    if p["mode"] == "given":
        return (f"Student given, checked before training against {limits} on {p['target']} ({p['threads']} threads, "
                f"band charged x{p['margin']:g})")
    return (f"Student chosen before training for {limits} on {p['target']} ({p['threads']} threads, band charged "
            f"x{p['margin']:g}): {section['chosen']}")


def after_training(section: dict[str, Any], artifacts: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The chosen student's estimate before training, from its untrained graph, against the estimate of its INT8
    .tflite and its p50 on this host (what the budget is finally checked on)."""
    chosen = next((r for r in section["rows"] if r["candidate"] == section["chosen"]), None)
    final = next((a for a in artifacts if a["name"] == CHECKED_FILE and a.get("status") == "ok"), None)
    if chosen is None or final is None or not final.get("target_estimate"):
        return None
    file_ms = final["target_estimate"]["ms"]
    budget = section["params"].get("latency_ms")
    return {"file": CHECKED_FILE, "pre_training_estimate_ms": chosen["estimate_ms"], "file_estimate_ms": file_ms,
            "gap_pct": round(100 * (chosen["estimate_ms"] - file_ms) / file_ms, 1),
            "host_ms": final["latency_ms"]["p50"], "host_threads": final["latency_ms"].get("threads"),
            "pre_training_int8_bytes": chosen["int8_bytes"], "file_bytes": final["bytes"],
            "latency_budget_ms": budget, "file_within_budget": None if budget is None else file_ms <= budget}


def after_training_line(check: dict[str, Any]) -> str:
    within = "" if check["latency_budget_ms"] is None else \
        f"; {'within' if check['file_within_budget'] else 'OVER'} the {check['latency_budget_ms']:g} ms budget"
    return (f"Before training the chosen student was estimated at {check['pre_training_estimate_ms']:.2f} ms; its "
            f"{check['file']} is estimated at {check['file_estimate_ms']:.2f} ms ({check['gap_pct']:+.1f} %){within}; "
            f"on this host it runs in {check['host_ms']:.2f} ms p50 ({check['host_threads']} threads). INT8 size "
            f"{check['pre_training_int8_bytes'] / 1e6:.2f} MB estimated, {check['file_bytes'] / 1e6:.2f} MB written.")


def choice_section(record: dict[str, Any] | None, run_student: tuple[str, float, int] | None,
                   artifacts: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The report's ``student_choice``: the record when it is this run's (its chosen student is the one trained)."""
    if not record or run_student is None:
        return None
    chosen = next((r for r in record["rows"] if r["candidate"] == record["chosen"]), None)
    if chosen is None or (chosen["arch"], float(chosen["width"]), int(chosen["size"])) != \
            (run_student[0], float(run_student[1]), int(run_student[2])):
        return None  # a record of another run in the same folder
    section = {k: record[k] for k in ("params", "rows", "chosen")}
    section["after_training"] = after_training(section, artifacts)
    return section
