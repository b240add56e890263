"""report.md: the report as Markdown tables, fit for $GITHUB_STEP_SUMMARY."""

from __future__ import annotations

from typing import Any

from edgekit.bench.choice_section import HEADER, after_training_line, choice_rows, choice_title
from edgekit.bench.deploy_pick import deploy_rate
from edgekit.bench.kept_float_section import kept_float_lines
from edgekit.bench.layers_section import WORST_HEADER, layers_intro, worst_rows
from edgekit.export.guarded import FAILED_TO

ARTIFACT_HEADER = ["File", "Format", "Precision", "Status", "Size", "Accuracy", "Agreement",
                   "Host ms p50 / p90 (threads)", "Target ms ± band", "Budgets"]


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f} %"


def metric_name(report: dict[str, Any]) -> str:
    """The headline metric the ``accuracy`` fields hold: top-1 accuracy, or mAP50 for detection."""
    return (report.get("metric") or {}).get("name", "Accuracy")


def metric_cell(report: dict[str, Any], value: float | None) -> str:
    """Accuracy as a percentage; mAP as a fraction, the way detection papers and tools print it."""
    if value is None or "metric" not in report:
        return _pct(value)
    return f"{value:.3f}"


def artifact_header(report: dict[str, Any]) -> list[str]:
    header = list(ARTIFACT_HEADER)
    header[5] = metric_name(report)
    also = (report.get("metric") or {}).get("also", [])
    return header[:6] + [k.replace("map", "mAP").replace("_", "-") for k in also] + header[6:]


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def target_cell(a: dict[str, Any]) -> str:
    parts = []
    est = a.get("target_estimate")
    if est:
        parts.append(f"{est['ms']:.2f} ± {est['band_pct']:.0f} %")
    device = a.get("device_latency_ms")
    if device:
        parts.append(f"device {device['p50']:.2f}")
    return "; ".join(parts) or "—"


def budget_cell(a: dict[str, Any]) -> str:
    marks = a.get("budgets") or {}
    if not marks:
        return "—"
    return " ".join({True: "✅ ", False: "❌ ", None: "— "}[m["passed"]] + key + (" not checked" if m["passed"] is None else "")
                    for key, m in marks.items())


def artifact_rows(report: dict[str, Any]) -> list[list[str]]:
    rows = []
    for a in report["artifacts"]:
        also = (report.get("metric") or {}).get("also", [])
        if a["status"] != "ok":
            rows.append([a["name"], a["format"], a["precision"], "❌ " + FAILED_TO.get(a.get("failed_in", ""), "failed")]
                        + ["—"] * (6 + len(also)))
            continue
        lat = a["latency_ms"]
        rows.append([a["name"], a["format"], a["precision"], "✅ ok", f"{a['bytes'] / 1024:.1f} KiB",
                     metric_cell(report, a.get("accuracy")), *(metric_cell(report, a.get(k)) for k in also),
                     _pct(a.get("agreement")),
                     f"{lat['p50']:.3f} / {lat['p90']:.3f} ({lat['threads']})", target_cell(a), budget_cell(a)])
    return rows


def _estimate_section(report: dict[str, Any]) -> list[str]:
    target = report["target"]
    cal = target.get("calibration")
    if not cal:
        return [f"_{target.get('calibration_note', 'no estimate')}._"]
    parts = [f"Target estimate at {target['estimate_threads']} thread(s): {cal['method']}.",
             _table(["Published figure", "Precision", "Threads", "Published ms", "Leave-one-out estimate ms", "Error"],
                    [[r["model"], r["precision"], str(r["threads"]), f"{r['published_ms']:g}", f"{r['estimate_ms']:.1f}",
                      f"{100 * r['error']:+.0f} %"] for r in cal["leave_one_out"]])]
    notes = {a["target_estimate"][key] for a in report["artifacts"] for key in ("note", "runtime_note")
             if a.get("target_estimate") and a["target_estimate"].get(key)}
    notes |= {a["target_estimate_note"] for a in report["artifacts"] if a.get("target_estimate_note")}
    parts += [f"_Note: {n}._" for n in sorted(notes)]
    kinds = sorted({k for a in report["artifacts"] if a.get("target_estimate")
                    for k in a["target_estimate"].get("breakdown_ms", {})})
    if kinds:
        parts.append("Where the estimated time goes (ms per operator kind):")
        parts.append(_table(["File"] + kinds,
                            [[a["name"]] + [f"{a['target_estimate']['breakdown_ms'].get(k, 0):.3f}" for k in kinds]
                             for a in report["artifacts"] if a.get("target_estimate", {}) and
                             a["target_estimate"].get("breakdown_ms")]))
    return parts


def _models_section(report: dict[str, Any]) -> list[str]:
    if "teacher" not in report:
        return []
    t = report["teacher"]
    return [
        "## Models",
        _table(["Model", "Parameters", metric_name(report)],
               [[f"teacher ({t['source']})", f"{t['params']:,}", metric_cell(report, t["accuracy"])]]
               + [[f"{s['name']} ({s['arch']}{' x' + str(s['width']) if 'width' in s else ''}"
                   f"{', ' + s['method'].upper() if 'method' in s else ''})", f"{s['params']:,}", metric_cell(report, s["accuracy"])]
                  for s in report["students"]]),
        f"Teacher/student parameters: {report['teacher_to_student_params']}x. "
        f"Distillation: T = {report['students'][0]['temperature']}, alpha = {report['students'][0]['alpha']} "
        f"(alpha weighs {report['students'][0].get('alpha_convention', 'the soft KD term').replace('weight of ', '')})."
        + (f" INT8 training loss: {report['students'][1]['loss']}." if report["students"][1].get("loss") else ""),
    ]


def failed_files(report: dict[str, Any]) -> list[tuple[str, str]]:
    """(file, what failed and its error) per file that failed: the table has no room for the cause."""
    return [(a["name"], f"{FAILED_TO.get(a.get('failed_in', ''), 'failed')}: {a.get('error') or 'no error recorded'}")
            for a in report["artifacts"] if a["status"] != "ok"]


def _noise_line(report: dict[str, Any]) -> list[str]:
    """How noisy the host was while timing: host numbers are only as good as that."""
    timed = [a["latency_ms"] for a in report["artifacts"] if a["status"] == "ok" and "noise_pct" in a.get("latency_ms", {})]
    if not timed:
        return []
    line = (f"Host timing noise: the median timing round's p50 was up to {max(t['noise_pct'] for t in timed):.1f} % above "
            "the quiet rounds' (host p50/p90 are the quiet rounds').")
    if not all(t.get("settled", True) for t in timed):
        line += (" This host was busy for the whole timing window, so too few quiet rounds came: host figures may be high "
                 "and may move between runs; rerun on a quieter machine or raise latency_seconds.")
    return [line]


def _choice_section(report: dict[str, Any]) -> list[str]:
    section = report.get("student_choice")
    if not section:
        return []
    check = section.get("after_training")
    return ["## Student choice", choice_title(section) + ".", _table(list(HEADER), choice_rows(section)),
            *([after_training_line(check)] if check else [])]


def _layers_section(report: dict[str, Any]) -> list[str]:
    section = report.get("layers")
    if not section:
        return []
    if "error" in section:
        return ["## Per-layer INT8 error", f"No per-layer report: {section['error']}"]
    return ["## Per-layer INT8 error", layers_intro(section) + ". The five worst layers of each INT8 file:",
            _table(list(WORST_HEADER), worst_rows(section))]


def render_markdown(report: dict[str, Any]) -> str:
    target = report["target"]
    deploy = report.get("deploy") or {}
    head = f"{target['description']}; host: {report['host']['cpu']} ({report['host']['cores']} cores)."
    if "data" in report:
        data = report["data"]
        head += (f" Data: {data['source']}, {len(data['classes'])} classes, {metric_name(report)} on the `{data['eval_split']}` "
                 f"split ({data['counts'][data['eval_split']]} images).")
        if data.get("input_size_reason"):
            head += f" Input size chosen from the data: {data['input_size_reason']}."
        if data.get("distill_epochs_reason"):
            head += f" Student epochs chosen from the data: {data['distill_epochs_reason']}."
    budgets = report.get("budgets") or {}
    parts = [
        f"# edgekit report — target {target['name']}",
        head,
        *(f"> **Warning: learned too little.** {line}." for line in report.get("learned_little", [])),
        f"**Deploy this one:** `{deploy['name']}`, {deploy['why']}." if deploy.get("name")
        else f"**Deploy:** {deploy.get('why', 'no pick')}.",
        *([f"Speed of `{deploy['name']}` {rate}."] if (rate := deploy_rate(report)) else []),
        "## Artifacts",
        _table(artifact_header(report), artifact_rows(report)),
        *(f"**Failed:** `{name}` {cause}" for name, cause in failed_files(report)),
        "Budgets: " + (", ".join(f"{k} {'<=' if k in ('latency_ms', 'size_mb') else '>='} {v:g}" for k, v in budgets.items())
                       if budgets else "none set") + ".",
        *_noise_line(report),
        "## Target estimate",
        *_estimate_section(report),
        *_models_section(report),
        *_choice_section(report),
        *kept_float_lines(report.get("kept_float")),
        *_layers_section(report),
    ]
    if "stages" in report:
        parts += ["## Stage timings", _table(["Stage", "Seconds"], [[k, f"{v['seconds']:.1f}"] for k, v in report["stages"].items()])]
    parts += ["## Versions", ", ".join(f"{k} {v}" for k, v in report["versions"].items())]
    return "\n\n".join(parts) + "\n"
