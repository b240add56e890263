"""Where the export stage's time goes: `edgekit export --force-stage export` under cProfile.

    python benchmarks/export_profile.py RUN_DIR [--name export_profile]

RUN_DIR is a finished `edgekit compress` run on the built-in digits (its stages up to quantize are reused;
pass the options the run was made with after `--`). Writes benchmarks/results/NAME.{json,md}: the stage's
wall time, the seconds of each file (as the stage records them), and the cumulative seconds of the phases
that dominate (torch.export tracing, decompositions, ONNX translation, LiteRT conversion, rebuilding the
INT8 graph), with the load average before and after, since a profile on shared cores is slower throughout.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
# (label, substring of "file:line(function)") — cumulative seconds of the first match, in profile order.
PHASES = (
    ("export stage, whole", "stages/export.py"),
    ("rebuild + convert the INT8 graph (not in compress: kept from quantize)", "quantize/pt2e.py"),
    ("ONNX files, both (torch.onnx.export)", "export/onnx_format.py"),
    ("  of which torch.export + decompositions", "onnx/_internal/exporter/_core.py:1038(_prepare_exported_program_for_export)"),
    ("TFLite files, both (litert_torch.convert)", "export/tflite_format.py"),
    ("  standard TFLite metadata and labels (both)", "export/tflite_metadata.py"),
    ("ExecuTorch files, both (torch.export + to_edge_transform_and_lower)", "export/pte_format.py"),
    ("  of which lowering to XNNPACK", "exir/program/_program.py"),
    ("all torch.export tracing (aot_export_joint)", "torch/export/_trace.py:1167(_export_to_aten_ir)"),
    ("all ExportedProgram.run_decompositions", "torch/export/exported_program.py:1514(run_decompositions)"),
    ("parity and I/O checks (open_runner)", "runtime/runners.py"),
)


def phase_seconds(stats: pstats.Stats) -> dict[str, float]:
    rows = {f"{path}:{line}({name})": entry[3] for (path, line, name), entry in stats.stats.items()}  # type: ignore[attr-defined]
    out = {}
    for label, needle in PHASES:
        hits = [seconds for key, seconds in rows.items() if needle in key]
        out[label] = round(max(hits), 1) if hits else 0.0
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--name", default="export_profile")
    parser.add_argument("options", nargs="*", help="the options the run was made with (after --)")
    args = parser.parse_args()
    from edgekit.cli import main as edgekit_main

    load_before = os.getloadavg()[0]
    sys.argv = ["edgekit", "export", *args.options, "--out", str(args.run), "--force-stage", "export"]
    profile = cProfile.Profile()
    profile.enable()
    try:
        edgekit_main()
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
    profile.disable()
    load_after = os.getloadavg()[0]
    stage = json.loads((args.run / "artifacts" / "stage.json").read_text())
    files = {row["name"]: row.get("seconds") for row in stage["result"]["artifacts"]}
    result = {"command": f"python benchmarks/export_profile.py RUN_DIR -- {' '.join(args.options)}".rstrip(" -"),
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                       text=True).stdout.strip(),
              "load_before": round(load_before, 2), "load_after": round(load_after, 2),
              "stage_seconds": stage.get("seconds"), "file_seconds": files,
              "phases_cumulative_seconds": phase_seconds(pstats.Stats(profile))}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# Where the export stage's time goes", "",
             f"Command: `{result['command']}` (commit {result['commit']}, {result['date']})  ",
             f"Load average before / after: {result['load_before']} / {result['load_after']}"
             + (" (NOT QUIET: other work shared the 2 cores, every second here is inflated)" if load_before >= 0.7 else ""),
             "", f"Stage: {result['stage_seconds']} s under cProfile.", "", "| File | s |", "|---|---|"]
    lines += [f"| {name} | {seconds} |" for name, seconds in files.items()]
    lines += ["", "| Phase (cumulative, phases overlap) | s |", "|---|---|"]
    lines += [f"| {label} | {seconds} |" for label, seconds in result["phases_cumulative_seconds"].items()]
    (RESULTS / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
