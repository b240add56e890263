"""``edgekit inspect RUN_DIR``: the per-layer report of a finished run, as a table (nothing is written)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from edgekit.errors import EdgekitError
from edgekit.pipeline.runner import STAGE_FILE, read_stage, stage_dir
from edgekit.registry import FORMATS, format_of


def layer_files(out: Path, file: str | None) -> list[str]:
    """The run's INT8 files whose layers can be read (``file`` alone when given), or a user error saying why not."""
    if not (stage_dir(out, "export") / STAGE_FILE).is_file():
        raise EdgekitError(f"{out} is not an edgekit run (no finished export stage in it)",
                           "pass the --out folder of `edgekit compress`, e.g. `edgekit inspect runs/default`")
    artifacts = [a for a in read_stage(out, "export")["result"]["artifacts"] if a["status"] == "ok"]
    readable = [a["name"] for a in artifacts if a["precision"] == "int8" and "layers" in FORMATS[format_of(a["name"])]]
    if file is not None:
        names = [a["name"] for a in artifacts if "layers" in FORMATS[format_of(a["name"])]]
        if file not in names:
            raise EdgekitError(f"--file {file} is not a file of {out} whose layers can be read",
                               f"pass one of {', '.join(names) or '(none)'}")
        return [file]
    if not readable:
        raise EdgekitError(f"{out} has no INT8 .onnx or .tflite file",
                           f"export one first: `edgekit export --out {out}`")
    return readable


def layer_table(report: dict[str, Any], files: list[str]) -> Table:
    """One row per layer: SQNR against FP32 for each file (and, for one file, every measure)."""
    entries = [f for f in report["files"] if f["name"] in files]
    detail = len(entries) == 1
    table = Table(title=f"Per-layer error on {report['images']} test images (SQNR in dB; higher is closer)")
    table.add_column("Layer")
    table.add_column("Kind")
    if detail:
        for column in ("vs FP32 dB", "cos FP32", "vs PyTorch INT8 dB", "cos INT8", "own dB"):
            table.add_column(column, justify="right")
    else:
        for entry in [report["files"][0], *entries]:
            table.add_column(f"{entry['name']} vs FP32", justify="right")
    enters = {f["name"]: f.get("error_enters", {}).get("layer") for f in report["files"]}
    for i, layer in enumerate(report["layers"]):
        cells = [layer["layer"], layer["kind"]]
        if detail:
            row = entries[0]["layers"][i]
            cells += [f"{row['sqnr_fp32_db']:.1f}", f"{row['cosine_fp32']:.4f}",
                      f"{row['sqnr_int8_db']:.1f}" if "sqnr_int8_db" in row else "—",
                      f"{row['cosine_int8']:.4f}" if "cosine_int8" in row else "—",
                      f"{row['own_sqnr_db']:.1f}" if "own_sqnr_db" in row else "—"]
            if enters.get(entries[0]["name"]) == layer["layer"]:
                cells[0] += "  <- error enters"
        else:
            for entry in [report["files"][0], *entries]:
                mark = " *" if enters.get(entry["name"]) == layer["layer"] else ""
                cells.append(f"{entry['layers'][i]['sqnr_fp32_db']:.1f}{mark}")
        table.add_row(*cells)
    if not detail:
        table.caption = ("* where the error enters: the layer that adds the most error itself (its output against the "
                         "FP32 layer run on the file's own input to it)")
    return table


def where_lines(report: dict[str, Any], files: list[str]) -> list[str]:
    lines = []
    for entry in report["files"]:
        if (entry["name"] in files or entry is report["files"][0]) and "error_enters" in entry:
            e = entry["error_enters"]
            lines.append(f"{entry['name']}: error enters at {e['layer']} (its own SQNR {e['own_sqnr_db']:.1f} dB, "
                         f"{e['sqnr_fp32_db']:.1f} dB against FP32); worst five: {', '.join(entry['worst'])}")
    for skipped in report.get("not_compared", []):
        lines.append(f"{skipped['name']}: not compared: {skipped['reason']}")
    return lines
