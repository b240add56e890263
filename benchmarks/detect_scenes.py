"""Detection on the built-in scenes: teacher, student from scratch and distilled student, same budget (PyTorch).

    python benchmarks/detect_scenes.py [--epochs 30] [--out benchmarks/.cache/detect]

The INT8 and export steps of the detection chain are not wired yet; this measures the distillation claim
(distilled >= scratch + 2 mAP50 points) on the stages that exist. Writes benchmarks/results/detect_scenes.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30, help="teacher and student epochs")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / ".cache" / "detect")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()

    from edgekit.config import as_dict, build_settings
    from edgekit.detect import stage_distill, stage_teacher
    from edgekit.detect.stage_context import DetectContext

    started = time.perf_counter()
    common = {"task": "detect", "epochs": args.epochs}
    kd = build_settings({}, common)
    scratch = build_settings({}, {**common, "alpha": 0.0})
    seconds = {}
    t = time.perf_counter()
    teacher = stage_teacher.run(DetectContext(kd, args.out / "kd"))
    seconds["teacher"] = time.perf_counter() - t
    t = time.perf_counter()
    distilled = stage_distill.run(DetectContext(kd, args.out / "kd"))
    seconds["distill"] = time.perf_counter() - t
    if not (args.out / "scratch" / "teacher").exists():
        shutil.copytree(args.out / "kd" / "teacher", args.out / "scratch" / "teacher")
    t = time.perf_counter()
    plain = stage_distill.run(DetectContext(scratch, args.out / "scratch"))
    seconds["scratch"] = time.perf_counter() - t
    pick = lambda r: {k: r["result"][k] for k in ("map50", "map50_95", "params")}  # noqa: E731
    result = {"command": "python benchmarks/detect_scenes.py " + " ".join(sys.argv[1:]),
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": f"{platform.processor() or platform.machine()}, Python {platform.python_version()}",
              "minutes": round((time.perf_counter() - started) / 60, 1), "stage_seconds": {k: round(v, 1) for k, v in seconds.items()},
              "teacher": pick(teacher), "scratch": pick(plain), "distilled": pick(distilled),
              "settings": as_dict(kd)}
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "detect_scenes.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["# Detection on the built-in scenes (PyTorch, before INT8)", "",
             f"Command: `{result['command']}`  ", f"Date: {result['date']}  ", f"Machine: {result['machine']}  ",
             f"Whole run: {result['minutes']} min; {result['settings']['teacher_epochs']} epochs each, "
             f"{result['settings']['size']} px input.", "",
             "| Model | Parameters | mAP50 | mAP50-95 |", "|---|---|---|---|"]
    for name in ("teacher", "scratch", "distilled"):
        r = result[name]
        lines.append(f"| {name} | {r['params']:,} | {r['map50']:.4f} | {r['map50_95']:.4f} |")
    gain = 100 * (result["distilled"]["map50"] - result["scratch"]["map50"])
    lines += ["", f"Distilled minus scratch: {gain:+.1f} mAP50 points (goal: >= +2)."]
    (args.results / "detect_scenes.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
