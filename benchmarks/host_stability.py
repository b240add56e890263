"""Is the host latency of the built-in run stable? Benchmark the same run twice and compare p50 and p90.

    python benchmarks/host_stability.py [--run DIR]

Without --run it first makes the built-in run (`edgekit compress --target rpi4`, about 3 minutes).
Goal (issue 4): p50 and p90 of every artifact within 10 % between the two benchmark runs.
Writes benchmarks/results/host_stability.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
EDGEKIT = Path(sys.executable).parent / "edgekit"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="an existing run directory (default: make the built-in run)")
    args = parser.parse_args()
    run = args.run or Path(tempfile.mkdtemp(prefix="edgekit-stability-")) / "run"
    if args.run is None:
        subprocess.run([str(EDGEKIT), "compress", "--target", "rpi4", "--out", str(run)], check=True)
    rounds = []
    for _ in range(2):
        subprocess.run([str(EDGEKIT), "benchmark", str(run), "--force"], check=True, capture_output=True)
        report = json.loads((run / "report.json").read_text())
        rounds.append({a["name"]: a["latency_ms"] for a in report["artifacts"] if a["status"] == "ok"})
    rows = []
    for name in rounds[0]:
        a, b = rounds[0][name], rounds[1][name]
        rows.append({"artifact": name, "threads": a["threads"], "runs": [a["runs"], b["runs"]],
                     "p50": [a["p50"], b["p50"]], "p90": [a["p90"], b["p90"]],
                     "p50_change": round(b["p50"] / a["p50"] - 1, 4), "p90_change": round(b["p90"] / a["p90"] - 1, 4)})
    result = {"command": "python benchmarks/host_stability.py" + (f" --run {args.run}" if args.run else ""),
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "host": report["host"],
              "python": platform.python_version(), "rows": rows,
              "stable_within_10pct": all(abs(r["p50_change"]) <= 0.10 and abs(r["p90_change"]) <= 0.10 for r in rows)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "host_stability.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["# Host latency stability: the built-in run benchmarked twice", "",
             f"Command: `{result['command']}`  ", f"Date: {result['date']}  ",
             f"Host: {result['host']['cpu']}, {result['host']['cores']} cores", "",
             "| Artifact | Threads | Timed calls | p50 ms (1st, 2nd) | change | p90 ms (1st, 2nd) | change |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['artifact']} | {r['threads']} | {r['runs'][0]}, {r['runs'][1]} | {r['p50'][0]:.4f}, {r['p50'][1]:.4f} | "
                     f"{100 * r['p50_change']:+.1f} % | {r['p90'][0]:.4f}, {r['p90'][1]:.4f} | {100 * r['p90_change']:+.1f} % |")
    lines += ["", f"Every p50 and p90 within 10 %: {'yes' if result['stable_within_10pct'] else 'NO'}."]
    (RESULTS / "host_stability.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
