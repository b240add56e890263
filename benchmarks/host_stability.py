"""Is the host latency of the built-in run stable? Benchmark the same run several times and compare p50 and p90.

    python benchmarks/host_stability.py [--run DIR] [--repeats 4]

Without --run it first makes the built-in run (`edgekit compress --target rpi4`, about 3 minutes).
Goal (issue 4): p50 and p90 of every artifact within 10 % between two benchmark runs. Checked more
strictly here: the spread (slowest / fastest - 1) over all repeats, so every pair of runs is within it.
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
    parser.add_argument("--repeats", type=int, default=4, help="benchmark runs to compare (default 4)")
    args = parser.parse_args()
    run = args.run or Path(tempfile.mkdtemp(prefix="edgekit-stability-")) / "run"
    if args.run is None:
        subprocess.run([str(EDGEKIT), "compress", "--target", "rpi4", "--out", str(run)], check=True)
    rounds = []
    for _ in range(args.repeats):
        subprocess.run([str(EDGEKIT), "benchmark", str(run), "--force"], check=True, capture_output=True)
        report = json.loads((run / "report.json").read_text())
        rounds.append({a["name"]: a["latency_ms"] for a in report["artifacts"] if a["status"] == "ok"})
    rows = []
    for name in rounds[0]:
        runs = [r[name] for r in rounds]
        row = {"artifact": name, "threads": runs[0]["threads"], "runs": [r["runs"] for r in runs],
               "noise_pct": [r.get("noise_pct") for r in runs], "rounds": [r.get("rounds") for r in runs],
               "quiet_rounds": [r.get("quiet_rounds") for r in runs], "settled": [r.get("settled") for r in runs]}
        for q in ("p50", "p90"):
            row[q] = [r[q] for r in runs]
            row[f"{q}_spread"] = round(max(row[q]) / min(row[q]) - 1, 4)
        rows.append(row)
    command = "python benchmarks/host_stability.py" + (f" --run {args.run}" if args.run else "") + f" --repeats {args.repeats}"
    result = {"command": command, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "host": report["host"],
              "python": platform.python_version(), "repeats": args.repeats, "statistic": report_statistic(run), "rows": rows,
              "stable_within_10pct": all(r["p50_spread"] <= 0.10 and r["p90_spread"] <= 0.10 for r in rows)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "host_stability.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["# Host latency stability: the built-in run benchmarked several times", "",
             f"Command: `{result['command']}`  ", f"Date: {result['date']}  ",
             f"Host: {result['host']['cpu']}, {result['host']['cores']} cores", "",
             f"Statistic per run: {result['statistic']}.", "",
             "| Artifact | Threads | p50 ms per run | spread | p90 ms per run | spread | host noise % per run | quiet / all rounds per run |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['artifact']} | {r['threads']} | {', '.join(f'{v:.4f}' for v in r['p50'])} | "
                     f"{100 * r['p50_spread']:.1f} % | {', '.join(f'{v:.4f}' for v in r['p90'])} | {100 * r['p90_spread']:.1f} % | "
                     f"{', '.join(str(v) for v in r['noise_pct'])} | "
                     f"{', '.join(f'{q}/{n}' + ('' if ok else ' (busy)') for q, n, ok in zip(r['quiet_rounds'], r['rounds'], r['settled']))} |")
    lines += ["", "Host noise: how far the median timing round's p50 lay above the quiet rounds' (edgekit/bench/latency.py). "
              "Quiet rounds: those whose percentile lay within 5 % of the quietest; \"busy\" marks a run that hit the "
              "timing cap with fewer than 5.",
              "", f"Every p50 and p90 within 10 % over all {args.repeats} runs: {'yes' if result['stable_within_10pct'] else 'NO'}."]
    (RESULTS / "host_stability.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def report_statistic(run: Path) -> str:
    report = json.loads((run / "report.json").read_text())
    return next(a["latency_ms"].get("statistic", "?") for a in report["artifacts"] if a["status"] == "ok")


if __name__ == "__main__":
    sys.exit(main())
