"""Assemble the reports at the top of --out from the benchmark's measurements: the target estimate per
artifact, optional device measurements, budget marks and the "deploy this one" pick.

This runs on every ``compress``/``benchmark`` call (it is cheap), so a new target, budget or
device never re-measures what the benchmark stage already measured.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from edgekit.bench.choice_section import choice_section
from edgekit.bench.budgets import check_budgets, failure_lines, merge_budgets
from edgekit.bench.deploy_guide import GUIDE_FILE, deploy_snippets, render_guide
from edgekit.bench.deploy_pick import DEFAULT_PARITY_GATE, pick_deployable
from edgekit.bench.layers_section import layers_summary
from edgekit.bench.learned_check import caveat, learned_little
from edgekit.export.artifact_meta import PREPROCESS_FILE
from edgekit.bench.report_html import write_html
from edgekit.bench.report_md import render_markdown
from edgekit.estimate.target_profiles import load_target
from edgekit.bench.threads import thread_counts
from edgekit.estimate.target_estimate import calibrate, estimate
from edgekit.bench.kept_float_section import goal_failures, kept_float_section
from edgekit.pipeline.atomic import write_json_atomic, write_text_atomic

REPORT_SCHEMA = "edgekit.report/1"


def no_estimate_note(fmt: str) -> str:
    return f"no estimate for .{fmt}: the cost model reads the operators of .tflite and .onnx files only"


def target_section(profile: dict[str, Any], threads: int) -> dict[str, Any]:
    cal = calibrate(profile)
    section = {k: profile[k] for k in ("name", "description", "cpu", "runtime") if k in profile}
    section["memory"] = profile.get("memory", {})
    section["estimate_threads"] = threads
    if cal is None:
        section["calibration"] = None
        section["calibration_note"] = ("this target is measured, not estimated" if profile.get("measured")
                                       else "the profile has fewer than 3 published figures: no estimate")
    else:
        section["calibration"] = {"method": cal.method(), "figures": len(cal.loo),
                                  "median_loo_error_pct": round(100 * cal.median_error, 1),
                                  "worst_loo_error_pct": round(100 * cal.worst_error, 1), "leave_one_out": cal.loo}
    return section


def assemble(measurements: dict[str, Any], profile: dict[str, Any], threads: int, budget_items: list[str],
             device_results: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    report = {"schema": REPORT_SCHEMA, **{k: v for k, v in measurements.items() if k != "schema"}}
    cal = calibrate(profile)
    budgets = merge_budgets(profile, budget_items)
    artifacts = []
    for a in measurements["artifacts"]:
        a = dict(a)
        if a["status"] == "ok":
            a["target_estimate"] = estimate(a["graph"], cal, threads) if cal and a.get("graph") else None
            if cal and not a.get("graph"):
                a["target_estimate_note"] = no_estimate_note(a["format"])
            if a["target_estimate"] and a.get("runtime") != profile["runtime"]["name"]:
                a["target_estimate"]["runtime_note"] = (f"calibrated on {profile['runtime']['name']} figures; "
                                                        f"{a.get('runtime')} on the device may differ")
            if profile.get("measured"):
                a["target_estimate"] = {"ms": a["latency_ms"]["p50"], "low_ms": a["latency_ms"]["p50"],
                                        "high_ms": a["latency_ms"]["p90"], "band_pct": 0.0, "threads": a["latency_ms"]["threads"],
                                        "method": "measured on this host (p50; high = p90)"}
            est = a["target_estimate"]
            a["target_estimate_ms"] = est["ms"] if est else None  # the flat keys CI scripts read
            a["target_band_pct"] = est["band_pct"] if est else None
            a["target_fps"] = round(1000.0 / est["ms"], 1) if est and est["ms"] > 0 else None
            if device_results and a["name"] in device_results:
                a["device_latency_ms"] = device_results[a["name"]]
            a["budgets"] = check_budgets(a, budgets)
        artifacts.append(a)
    report["artifacts"] = artifacts
    teacher = measurements.get("teacher") or {}
    if cal and teacher.get("graph"):
        report["models_on_target"] = [{"name": f"teacher {teacher['arch']} (FP32)", "accuracy": teacher["accuracy"],
                                       "bytes": 4 * teacher["params"],
                                       "target_estimate": estimate(teacher["graph"], cal, threads)}]
    report["target"] = target_section(profile, threads)
    report["budgets"] = budgets
    report["deploy"] = pick_deployable(artifacts, profile["runtime"]["name"], measurements.get("parity_gate", DEFAULT_PARITY_GATE),
                                       profile["name"])
    findings = learned_little(report)
    if findings:
        report["learned_little"] = findings
        if report["deploy"].get("name"):
            report["deploy"]["why"] += f"; {caveat(findings)}"
    return report


def write_reports(out: Path, report: dict[str, Any]) -> list[str]:
    """Write report.{json,md,html} at the top of ``out``; append the Markdown to $GITHUB_STEP_SUMMARY when set.
    Returns one line per missed budget."""
    markdown = render_markdown(report)
    snippets = _snippets(out, report)
    write_json_atomic(out / "report.json", report)
    write_text_atomic(out / "report.md", markdown)
    write_html(report, out / "report.html", snippets)
    if snippets:
        write_text_atomic(out / GUIDE_FILE, render_guide(report, snippets))
    else:
        (out / GUIDE_FILE).unlink(missing_ok=True)  # no pick now: an earlier guide would name the wrong file
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(markdown + "\n")
    return failure_lines(report)


def _snippets(out: Path, report: dict[str, Any]) -> dict[str, tuple[str, str, str]] | None:
    """Code to paste for the deploy pick, from the run's preprocess.json (None without either)."""
    recipe = Path(out) / "artifacts" / PREPROCESS_FILE
    if not recipe.is_file():
        return None
    return deploy_snippets(report, json.loads(recipe.read_text(encoding="utf-8")))


def finalize_run(out: Path, measurements_path: Path, target: str, threads: int | None, budget_items: list[str],
                 device_results: dict[str, dict[str, Any]] | None = None, choice_record: dict[str, Any] | None = None,
                 run_student: tuple[str, float, int] | None = None,
                 layers: dict[str, Any] | None = None,
                 kept_float: dict[str, Any] | None = None,
                 useful: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[str]]:
    """``choice_record``: the student choice made before training, reported when ``run_student`` (arch, width,
    size of the trained student) is the one it chose. ``layers``: benchmark/layers.json. ``kept_float``: the
    export stage's accuracy-goal record (edgekit/widen/). ``useful``: the task's useful level
    (Task.useful_level), under which the report says a model learned too little."""
    profile = load_target(target)
    measurements = json.loads(measurements_path.read_text(encoding="utf-8"))
    if useful:
        measurements["useful"] = useful
    report = assemble(measurements, profile, thread_counts(threads, profile).target, budget_items, device_results)
    section = choice_section(choice_record, run_student, report["artifacts"])
    if section:
        report["student_choice"] = section
    summary = layers_summary(layers)
    if summary:
        report["layers"] = summary
    kept = kept_float_section(kept_float, report["artifacts"], calibrate(profile),
                              thread_counts(threads, profile).target)
    if kept:
        report["kept_float"] = kept
    return report, write_reports(out, report) + goal_failures(kept, report["artifacts"])
