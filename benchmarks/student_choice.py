"""The student choice before training: every default candidate's INT8 estimate on a target, and how long it takes.

For the built-in data's size (32 px: sizes 32/64/96) and for photos (96-224 px), the default candidate set
(edgekit/choose/candidates.py) is costed on the target at its threads, from untrained networks (no conversion),
and the pick is made for each latency budget. Issue 20 asks for the whole selection within 60 s on 2 cores.

    python benchmarks/student_choice.py [--target rpi4] [--classes 10] [--budgets 2 5 10 20]

Writes benchmarks/results/student_choice_<target>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
GOAL_SECONDS = 60.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="rpi4")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--budgets", type=float, nargs="+", default=[2, 5, 10, 20])
    args = parser.parse_args()
    from edgekit.bench.threads import thread_counts
    from edgekit.choose.candidates import classifier_builder, default_candidates
    from edgekit.choose.cost import candidate_costs
    from edgekit.choose.pick import pick_student
    from edgekit.estimate.target_profiles import load_target

    profile = load_target(args.target)
    threads = thread_counts(None, profile).target
    result: dict = {"command": "python benchmarks/student_choice.py " + " ".join(sys.argv[1:]),
                    "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                             cwd=ROOT).stdout.strip(),
                    "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                    "load_before": [round(v, 2) for v in os.getloadavg()], "target": args.target, "threads": threads,
                    "cases": []}
    for name, native in (("built-in data size (32 px)", 32), ("photos (96-224 px)", 480)):
        candidates = default_candidates(native)
        t0 = time.perf_counter()
        rows = candidate_costs(candidates, classifier_builder(args.classes), profile, threads)
        seconds = time.perf_counter() - t0
        picks = {}
        for budget in args.budgets:
            chosen = pick_student([dict(r) for r in rows], budget, None)
            picks[str(budget)] = chosen and {k: chosen[k] for k in ("candidate", "estimate_ms", "band_pct", "macs",
                                                                    "int8_bytes")}
        result["cases"].append({"name": name, "native": native, "candidates": len(rows),
                                "seconds": round(seconds, 1), "rows": rows, "picks": picks})
    result["load_after"] = [round(v, 2) for v in os.getloadavg()]
    stem = f"student_choice_{args.target}"
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    (RESULTS / f"{stem}.md").write_text(render(result), encoding="utf-8")
    print(render(result))
    return 0


def render(r: dict) -> str:
    lines = [f"# Student choice before training: {r['target']} ({r['threads']} threads)", "",
             f"Command: `{r['command'] or 'python benchmarks/student_choice.py'}`  ", f"Date: {r['date']}  ",
             f"Commit: {r['commit']}  ", f"Machine: {r['machine']}; load average before {r['load_before']}, "
             f"after {r['load_after']}", "",
             "Each candidate untrained, walked into the operator list its INT8 TFLite will hold and estimated by the "
             "benchmark's cost model; *INT8 KiB* is the file size estimated from that list. A budget picks the "
             "candidate with the most MACs whose estimate plus the band fits.", ""]
    checks = []
    for case in r["cases"]:
        lines += [f"## {case['name']}: {case['candidates']} candidates in {case['seconds']} s", "",
                  "| Candidate | Estimate ms | Band % | M MACs | Params | INT8 KiB |", "|---|---|---|---|---|---|"]
        lines += [f"| {x['candidate']} | {x['estimate_ms']:.2f} | {x['band_pct']:.0f} | {x['macs'] / 1e6:.1f} | "
                  f"{x['params']:,} | {x['int8_bytes'] / 1024:.0f} |" for x in case["rows"]]
        lines += ["", "| Budget ms | Chosen | Estimate ms | M MACs |", "|---|---|---|---|"]
        for budget, pick in case["picks"].items():
            lines.append(f"| {budget} | {pick['candidate']} | {pick['estimate_ms']:.2f} | {pick['macs'] / 1e6:.1f} |"
                         if pick else f"| {budget} | none fits | | |")
        lines.append("")
        checks.append((f"{case['name']}: selection {case['seconds']} s <= {GOAL_SECONDS:.0f} s",
                       case["seconds"] <= GOAL_SECONDS))
    lines += ["Checks:", ""] + [f"- {'pass' if ok else 'MISS'}: {text}" for text, ok in checks]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
