"""report.html: one self-contained page (inline CSS and SVG plots, no external requests)."""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Any

from edgekit.bench.choice_section import HEADER, after_training_line, choice_rows, choice_title
from edgekit.bench.deploy_pick import deploy_rate
from edgekit.bench.kept_float_section import kept_float_lines
from edgekit.bench.layers_section import WORST_HEADER, layers_intro, worst_rows
from edgekit.bench.report_md import artifact_header, artifact_rows, failed_files, metric_cell, metric_name
from edgekit.pipeline.atomic import write_text_atomic

STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}th{background:#f3f3f3}.note{color:#666}
.deploy{font-size:1.2em;padding:.6em 1em;background:#eef7ee;border-left:6px solid #3a3}
.nodeploy{font-size:1.2em;padding:.6em 1em;background:#fbeeee;border-left:6px solid #c33}
pre{background:#f6f6f6;padding:.8em;overflow-x:auto}"""


def _svg(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.tight_layout()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.index("<svg"):]


def _points(report: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """(label, latency, accuracy, bytes) for the teacher, the students and every artifact, on the target when
    there is an estimate, else on this host."""
    ok = [a for a in report["artifacts"] if a["status"] == "ok" and a.get("accuracy") is not None]
    # a file the target has no estimate for (a .pte) stays off a plot of estimates; its host time would not compare
    unestimated = [a["name"] for a in ok if a.get("target_estimate_note")]
    ok = [a for a in ok if not a.get("target_estimate_note")]
    on_target = all(a.get("target_estimate") for a in ok) and ok
    points = []
    for a in ok:
        latency = a["target_estimate"]["ms"] if on_target else a["latency_ms"]["p50"]
        points.append({"label": a["name"], "ms": latency, "acc": a["accuracy"], "bytes": a["bytes"]})
    for model in report.get("models_on_target", []) if on_target else []:
        points.append({"label": model["name"], "ms": model["target_estimate"]["ms"], "acc": model["accuracy"],
                       "bytes": model["bytes"]})
    where = (f"estimated on {report['target']['name']}, {report['target']['estimate_threads']} threads" if on_target
             else f"measured on this host, {report['host']['threads']} threads")
    if unestimated:
        where += f"; not shown (no estimate on the target): {', '.join(unestimated)}"
    return points, where


def svg_tradeoff(report: dict[str, Any]) -> str:
    """Accuracy against latency, point area proportional to file size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points, where = _points(report)
    fig, ax = plt.subplots(figsize=(8.5, 4.2))
    if points:
        biggest = max(p["bytes"] for p in points)
        for p in points:
            ax.scatter(p["ms"], 100 * p["acc"], s=30 + 1500 * (p["bytes"] / biggest) ** 0.5, alpha=0.55,
                       label=f"{p['label']} ({p['bytes'] / 1024:.0f} KiB)")
        ax.set_xscale("log")
        ax.ticklabel_format(axis="y", useOffset=False, style="plain")
        low, high = min(100 * p["acc"] for p in points), max(100 * p["acc"] for p in points)
        pad = max(1.0, 0.15 * (high - low))
        ax.set_ylim(low - pad, min(100.0, high + pad) if high < 100 else 100.5)
        legend = ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        for handle in legend.legend_handles:
            handle.set_sizes([40])
    ax.set_xlabel(f"latency p50, ms, batch 1 ({where}; log scale)")
    name = metric_name(report)
    ax.set_ylabel(f"test {name}, %" if "data" not in report else f"{report['data']['eval_split']} {name}, %")
    ax.set_title(f"{name} vs latency (point area = file size)")
    return _svg(fig)


def svg_breakdown(report: dict[str, Any]) -> str | None:
    """Stacked bars: the target estimate of each artifact split by operator kind."""
    rows = [a for a in report["artifacts"] if a.get("target_estimate") and a["target_estimate"].get("breakdown_ms")]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = sorted({k for a in rows for k in a["target_estimate"]["breakdown_ms"]})
    fig, ax = plt.subplots(figsize=(8.5, 0.9 + 0.5 * len(rows)))
    left = [0.0] * len(rows)
    for kind in kinds:
        values = [a["target_estimate"]["breakdown_ms"].get(kind, 0.0) for a in rows]
        ax.barh([a["name"] for a in rows], values, left=left, label=kind)
        left = [x + v for x, v in zip(left, values)]
    ax.set_xlabel(f"estimated ms on {report['target']['name']} ({report['target']['estimate_threads']} threads)")
    ax.set_title("Where the time goes (per operator kind)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return _svg(fig)


def svg_layers(report: dict[str, Any]) -> str | None:
    """SQNR against FP32 per layer, one line per INT8 file (FP32 files equal their student to rounding)."""
    section = report.get("layers")
    if not section or "files" not in section:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.5, 3.4))
    for entry in section["files"]:
        if entry["precision"] == "int8":
            ax.plot(range(len(entry["sqnr_fp32_db"])), entry["sqnr_fp32_db"], label=entry["name"], linewidth=1.2)
    ax.set_xlabel(f"layer, in execution order ({len(section['layers'])} quantized layers)")
    ax.set_ylabel("SQNR vs FP32 (dB)")
    ax.set_title("Per-layer INT8 error")
    ax.legend(fontsize=7)
    return _svg(fig)


def _layers(report: dict[str, Any]) -> str:
    section = report.get("layers")
    if not section:
        return ""
    if "error" in section:
        return f"<h2>Per-layer INT8 error</h2><p class='note'>No per-layer report: {html.escape(section['error'])}</p>"
    return (f"<h2>Per-layer INT8 error</h2><p>{html.escape(layers_intro(section))}.</p>{svg_layers(report) or ''}"
            + _table(list(WORST_HEADER), worst_rows(section)))


def _kept_float(report: dict[str, Any]) -> str:
    lines = kept_float_lines(report.get("kept_float"))
    if not lines:
        return ""
    return f"<h2>{html.escape(lines[0].lstrip('# '))}</h2>" + "".join(
        f"<p>{html.escape(line).replace('`', '')}</p>" for line in lines[1:])


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _plain_marks(rows: list[list[str]]) -> list[list[str]]:
    """Check marks any font has (a browser without an emoji font shows the Markdown's emoji as boxes)."""
    return [[cell.replace("✅", "✓").replace("❌", "✗") for cell in row] for row in rows]


def _deploy(report: dict[str, Any]) -> str:
    d = report.get("deploy") or {}
    if d.get("name"):
        rate = deploy_rate(report)
        return (f'<p class="deploy">Deploy this one: <b>{html.escape(d["name"])}</b> — {html.escape(d["why"])}.</p>'
                + (f'<p>Speed {html.escape(rate)}.</p>' if rate else ""))
    return f'<p class="nodeploy">Nothing to deploy: {html.escape(d.get("why", "no artifact"))}.</p>'


def _calibration(report: dict[str, Any]) -> str:
    cal = report["target"].get("calibration")
    if not cal:
        return f'<p class="note">{html.escape(report["target"].get("calibration_note") or "")}</p>'
    rows = [[r["model"], r["precision"], str(r["threads"]), f"{r['published_ms']:g}", f"{r['estimate_ms']:.1f}",
             f"{100 * r['error']:+.0f} %"] for r in cal["leave_one_out"]]
    sources = sorted({r["source"] for r in cal["leave_one_out"]})
    links = "".join(f'<li><a href="{html.escape(s)}">{html.escape(s)}</a></li>' for s in sources)
    return (f"<p>{html.escape(cal['method'])}.</p>"
            + _table(["Published figure", "Precision", "Threads", "Published ms", "Leave-one-out ms", "Error"], rows)
            + f"<p class='note'>Sources:</p><ul class='note'>{links}</ul>")


def _code(snippets: dict[str, tuple[str, str, str]] | None) -> str:
    if not snippets:
        return ""
    blocks = "".join(f"<h3>{html.escape(title)}</h3><pre><code>{html.escape(code)}</code></pre>"
                     for title, _, code in snippets.values())
    return f"<h2>Code to paste</h2><p class='note'>The same as DEPLOY.md beside this page.</p>{blocks}"


def _choice(report: dict[str, Any]) -> str:
    section = report.get("student_choice")
    if not section:
        return ""
    check = section.get("after_training")
    return (f"<h2>Student choice</h2><p>{html.escape(choice_title(section))}.</p>"
            + _table(list(HEADER), choice_rows(section))
            + (f"<p>{html.escape(after_training_line(check))}</p>" if check else ""))


def render_html(report: dict[str, Any], snippets: dict[str, tuple[str, str, str]] | None = None) -> str:
    target = report["target"]
    breakdown = svg_breakdown(report)
    models = ""
    if "teacher" in report:
        t = report["teacher"]
        rows = [[f"teacher ({t['source']})", f"{t['params']:,}", metric_cell(report, t["accuracy"])]]
        rows += [[s["name"], f"{s['params']:,}", metric_cell(report, s["accuracy"])] for s in report["students"]]
        models = "<h2>Models</h2>" + _table(["Model", "Parameters", metric_name(report)], rows)
    stages = ("<h2>Stage timings</h2>" + _table(["Stage", "Seconds"], [[k, f"{v['seconds']:.1f}"]
                                                                    for k, v in report["stages"].items()])
              if "stages" in report else "")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>edgekit report — {html.escape(target['name'])}</title>
<style>{STYLE}</style></head><body>
<h1>edgekit report — target {html.escape(target['name'])}</h1>
<p>{html.escape(target['description'])}. Host: {html.escape(str(report['host']['cpu']))}, {report['host']['cores']} cores.</p>
{f'<p>Input size chosen from the data: {html.escape(reason)}.</p>' if (reason := report.get('data', {}).get('input_size_reason')) else ''}
{f'<p>Student epochs chosen from the data: {html.escape(why)}.</p>' if (why := report.get('data', {}).get('distill_epochs_reason')) else ''}
{''.join(f'<p class="nodeploy">Learned too little: {html.escape(line)}.</p>' for line in report.get('learned_little', []))}
{_deploy(report)}
<h2>Artifacts</h2>
{_table(artifact_header(report), _plain_marks(artifact_rows(report)))}
{''.join(f'<p class="nodeploy">Failed: <b>{html.escape(name)}</b> {html.escape(cause)}</p>' for name, cause in failed_files(report))}
{svg_tradeoff(report)}
{breakdown or ''}
{_code(snippets)}
<h2>Target estimate</h2>
{_calibration(report)}
{models}
{_choice(report)}
{_kept_float(report)}
{_layers(report)}
{stages}
<h2>Versions</h2><p>{html.escape(', '.join(f'{k} {v}' for k, v in report['versions'].items()))}</p>
</body></html>
"""


def write_html(report: dict[str, Any], path: Path, snippets: dict[str, tuple[str, str, str]] | None = None) -> None:
    write_text_atomic(Path(path), render_html(report, snippets))
