"""How good is the device latency estimate? Leave-one-out over every target's published figures.

For each packaged target with published figures: each figure is predicted by the cost model fitted to
all the others (edgekit/estimate/cost_model.py), and the error is stated. The goals (issue 4): median
error <= 15 % and worst <= 30 % on rpi4 and at least one other target; standard MobileNets on rpi4 at
4 threads within +-20 %.

    python benchmarks/latency_estimate.py

Writes benchmarks/results/latency_estimate.{json,md}.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def main() -> int:
    from edgekit.bench.targets import load_target, target_names
    from edgekit.estimate.target_estimate import calibrate

    started = time.perf_counter()
    targets = {}
    for name in target_names():
        profile = load_target(name)
        cal = calibrate(profile)
        if cal is None:
            targets[name] = {"figures": len(profile.get("published", [])), "calibrated": False}
            continue
        targets[name] = {"figures": len(cal.loo), "calibrated": True, "median_abs_error": round(cal.median_error, 4),
                         "worst_abs_error": round(cal.worst_error, 4), "leave_one_out": cal.loo,
                         "description": profile["description"]}
    result = {"command": "python benchmarks/latency_estimate.py",
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": f"{platform.processor() or platform.machine()}, Python {platform.python_version()}",
              "seconds": round(time.perf_counter() - started, 1), "targets": targets}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latency_estimate.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "latency_estimate.md").write_text(render(result))
    print(render(result))
    return 0


def render(r: dict) -> str:
    lines = ["# Device latency estimate: leave-one-out error on published figures", "",
             f"Command: `{r['command']}`  ", f"Date: {r['date']}  ", f"Ran in {r['seconds']} s.", "",
             "Each published figure is predicted by the cost model fitted to all the *other* figures of its target "
             "(leave-one-out). Goals: median |error| <= 15 %, worst <= 30 % on rpi4 and one other target; "
             "MobileNets on rpi4 at 4 threads within +-20 %.", "",
             "| Target | Figures | Median abs. error | Worst abs. error | Goal (median <= 15 %, worst <= 30 %) |",
             "|---|---|---|---|---|"]
    for name, t in r["targets"].items():
        if not t["calibrated"]:
            lines.append(f"| {name} | {t['figures']} | — | — | no estimate (too few published figures) |")
            continue
        ok = t["median_abs_error"] <= 0.15 and t["worst_abs_error"] <= 0.30
        lines.append(f"| {name} | {t['figures']} | {100 * t['median_abs_error']:.1f} % | {100 * t['worst_abs_error']:.1f} % "
                     f"| {'pass' if ok else 'MISS'} |")
    rpi4 = r["targets"].get("rpi4", {})
    mobilenets = [row for row in rpi4.get("leave_one_out", []) if row["model"].startswith("mobilenet") and row["threads"] == 4]
    if mobilenets:
        within = [abs(row["error"]) <= 0.20 for row in mobilenets]
        lines += ["", f"MobileNets on rpi4 at 4 threads within +-20 %: {sum(within)} of {len(within)}."]
    for name, t in r["targets"].items():
        if not t["calibrated"]:
            continue
        lines += ["", f"## {name}: {t['description']}", "",
                  "| Model | Precision | Threads | Published ms | Estimate ms (leave-one-out) | Error | Source |",
                  "|---|---|---|---|---|---|---|"]
        for row in t["leave_one_out"]:
            lines.append(f"| {row['model']} | {row['precision']} | {row['threads']} | {row['published_ms']:g} | "
                         f"{row['estimate_ms']:.1f} | {100 * row['error']:+.1f} % | {row['source']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
