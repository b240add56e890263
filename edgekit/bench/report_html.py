"""report.html: one self-contained page (inline CSS and SVG plots, no external requests)."""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Any

from edgekit.bench.report_md import artifact_rows
from edgekit.pipeline.atomic import write_text_atomic

STYLE = """body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}th{background:#f3f3f3}.note{color:#666}"""


def _svg_tradeoff(report: dict[str, Any]) -> str:
    """Accuracy against host latency, point area proportional to file size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [a for a in report["artifacts"] if a["status"] == "ok"]
    fig, ax = plt.subplots(figsize=(7, 4))
    if ok:
        biggest = max(a["bytes"] for a in ok)
        for a in ok:
            ax.scatter(a["latency_ms"]["p50"], 100 * a["accuracy"], s=60 + 900 * a["bytes"] / biggest, alpha=0.6,
                       label=f"{a['name']} ({a['bytes'] / 1024:.0f} KiB)")
        ax.legend(fontsize=8, loc="lower right")
    ax.axhline(100 * report["teacher"]["accuracy"], color="grey", ls="--", lw=1)
    ax.text(ax.get_xlim()[0], 100 * report["teacher"]["accuracy"], " teacher (PyTorch)", va="bottom", fontsize=8)
    ax.set_xlabel(f"host latency p50, ms ({report['host']['threads']} threads, batch 1)")
    ax.set_ylabel(f"{report['data']['eval_split']} accuracy, %")
    ax.set_title("Accuracy vs latency (point area = file size)")
    buf = io.StringIO()
    fig.tight_layout()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.index("<svg"):]


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(report: dict[str, Any]) -> str:
    t = report["teacher"]
    models = [[f"teacher ({t['source']})", f"{t['params']:,}", f"{100 * t['accuracy']:.2f} %"]]
    models += [[s["name"], f"{s['params']:,}", f"{100 * s['accuracy']:.2f} %"] for s in report["students"]]
    target = report["target"]
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>edgekit report — {html.escape(target['name'])}</title>
<style>{STYLE}</style></head><body>
<h1>edgekit report — target {html.escape(target['name'])}</h1>
<p>{html.escape(target['description'])}. Host: {html.escape(str(report['host']['cpu']))}, {report['host']['cores']} cores.
Data: {html.escape(report['data']['source'])}; accuracy on the {html.escape(report['data']['eval_split'])} split.</p>
<p class="note">{html.escape(target.get('estimate_note') or '')}</p>
<h2>Artifacts</h2>
{_table(["File", "Format", "Precision", "Status", "Size", "Accuracy", "Agreement", "Host ms p50 / p90", "Threads"], artifact_rows(report))}
{_svg_tradeoff(report)}
<h2>Models</h2>
{_table(["Model", "Parameters", "Accuracy"], models)}
<h2>Stage timings</h2>
{_table(["Stage", "Seconds"], [[k, f"{v['seconds']:.1f}"] for k, v in report["stages"].items()])}
<h2>Versions</h2><p>{html.escape(', '.join(f'{k} {v}' for k, v in report['versions'].items()))}</p>
</body></html>
"""


def write_html(report: dict[str, Any], path: Path) -> None:
    write_text_atomic(Path(path), render_html(report))
