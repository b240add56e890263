"""report.md: the report as Markdown tables, fit for $GITHUB_STEP_SUMMARY."""

from __future__ import annotations

from typing import Any


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f} %"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def artifact_rows(report: dict[str, Any]) -> list[list[str]]:
    rows = []
    for a in report["artifacts"]:
        if a["status"] != "ok":
            rows.append([a["name"], a["format"], a["precision"], "❌ failed", "—", "—", "—", "—", "—"])
            continue
        lat = a["latency_ms"]
        rows.append([a["name"], a["format"], a["precision"], "✅ ok", f"{a['bytes'] / 1024:.1f} KiB",
                     _pct(a["accuracy"]), _pct(a["agreement"]), f"{lat['p50']:.3f} / {lat['p90']:.3f}",
                     str(lat["threads"])])
    return rows


def render_markdown(report: dict[str, Any]) -> str:
    t, target, data = report["teacher"], report["target"], report["data"]
    parts = [
        f"# edgekit report — target {target['name']}",
        f"{target['description']}; host: {report['host']['cpu']} ({report['host']['cores']} cores). "
        f"Data: {data['source']}, {len(data['classes'])} classes, accuracy on the `{data['eval_split']}` split "
        f"({data['counts'][data['eval_split']]} images).",
        "## Artifacts",
        _table(["File", "Format", "Precision", "Status", "Size", "Accuracy", "Agreement with PyTorch",
                "Host ms p50 / p90", "Threads"], artifact_rows(report)),
        "## Models",
        _table(["Model", "Parameters", "Accuracy"],
               [[f"teacher ({t['source']})", f"{t['params']:,}", _pct(t["accuracy"])]]
               + [[f"{s['name']} ({s['arch']}{' x' + str(s['width']) if 'width' in s else ''}"
                   f"{', ' + s['method'].upper() if 'method' in s else ''})", f"{s['params']:,}", _pct(s["accuracy"])]
                  for s in report["students"]]),
        f"Teacher/student parameters: {report['teacher_to_student_params']}x. "
        f"Distillation: T = {report['students'][0]['temperature']}, alpha = {report['students'][0]['alpha']} "
        "(alpha weighs the soft KD term).",
        "## Stage timings",
        _table(["Stage", "Seconds"], [[k, f"{v['seconds']:.1f}"] for k, v in report["stages"].items()]),
        "## Versions",
        ", ".join(f"{k} {v}" for k, v in report["versions"].items()),
    ]
    if target.get("estimate") is None:
        parts.insert(3, f"_{target['estimate_note']}._")
    return "\n\n".join(parts) + "\n"
