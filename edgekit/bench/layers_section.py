"""The per-layer INT8 error in the reports: report.json's ``layers`` (from benchmark/layers.json), the worst five
layers of each INT8 file in report.md, and SQNR per layer, one line per file, in report.html."""

from __future__ import annotations

from typing import Any

WORST = 5
SOURCE = "benchmark/layers.json"


def layers_summary(layers: dict[str, Any] | None) -> dict[str, Any] | None:
    """What report.json keeps of layers.json: per file its SQNR series, where the error enters, the worst five."""
    if not layers:
        return None
    if "error" in layers:
        return {"source": SOURCE, "error": layers["error"]}
    files = []
    for entry in layers["files"]:
        rows = entry["layers"]
        kept: dict[str, Any] = {"name": entry["name"], "precision": entry["precision"],
                                "sqnr_fp32_db": [r["sqnr_fp32_db"] for r in rows]}
        if "error_enters" in entry:
            kept["error_enters"] = entry["error_enters"]
            worst = sorted(rows, key=lambda r: r["own_sqnr_db"])[:WORST]
            kept["worst"] = [{k: r[k] for k in ("layer", "sqnr_fp32_db", "own_sqnr_db", "sqnr_int8_db") if k in r}
                             for r in worst]
        files.append(kept)
    return {"source": SOURCE, "images": layers["images"], "layers": [la["layer"] for la in layers["layers"]],
            "files": files, "not_compared": layers.get("not_compared", [])}


def layers_intro(section: dict[str, Any]) -> str:
    return (f"Each quantized layer's output in each file against the FP32 student's same layer, on "
            f"{section['images']} test images (SQNR in dB, higher is closer; {SOURCE}; `edgekit inspect RUN_DIR` "
            "prints every layer). *Own*: the error the layer adds itself (its output against the FP32 layer run on the "
            "file's own input to it); the lowest is where the error enters")


def worst_rows(section: dict[str, Any]) -> list[list[str]]:
    rows = []
    for entry in section["files"]:
        for r in entry.get("worst", []):
            rows.append([entry["name"], r["layer"], f"{r['sqnr_fp32_db']:.1f}", f"{r['own_sqnr_db']:.1f}",
                         f"{r['sqnr_int8_db']:.1f}" if "sqnr_int8_db" in r else "—"])
    return rows


WORST_HEADER = ("File", "Layer", "vs FP32 dB", "Own dB", "vs PyTorch INT8 dB")

