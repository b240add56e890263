"""Detection end to end, measured: `edgekit compress --task detect --target rpi4`, plus a student trained from
scratch with the same budget (`edgekit distill --task detect --alpha 0` beside the same teacher).

    python benchmarks/detect_chain.py                      # built-in scenes, default settings (issue 5's goals)
    python benchmarks/detect_chain.py --coco128            # the real COCO128 subset in ../shared/data
    python benchmarks/detect_chain.py --aquarium           # Aquarium photos in ../shared/data, defaults (issue 22)
    python benchmarks/detect_chain.py --aquarium --teacher yolo.onnx   # ... distilled from a YOLO export
    python benchmarks/detect_chain.py -- --epochs 5        # anything after -- goes to both edgekit commands

Writes benchmarks/results/detect_{scenes,coco128,aquarium[_yolo]}.{json,md}: mAP50/mAP50-95 of the teacher, the scratch and
distilled students, the INT8 PyTorch graph and every file in its own runtime, with sizes, host latency and the
rpi4 estimate, and the wall time of the compress command.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
COCO128 = ROOT.parent / "shared" / "data" / "coco128-yolo.tar.gz"
AQUARIUM = ROOT.parent / "shared" / "data" / "aquarium-yolo.tar.gz"
CACHE = ROOT / "benchmarks" / ".cache"
# COCO128 at the default 96 px leaves most objects a few pixels wide; 160 px and more epochs (128 images a split).
COCO_FLAGS = ["--size", "160", "--epochs", "60"]


def unpacked_yaml(archive: Path, name: str, yaml_name: str) -> Path:
    """The data set's YAML, unpacked once under benchmarks/.cache; a clean exit naming the file when it is absent."""
    if not archive.is_file():
        raise SystemExit(f"{archive} is missing: this benchmark needs the shared data set (see ../shared/data/README.md)")
    folder = CACHE / name
    if not any(folder.rglob(yaml_name)):
        folder.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            tar.extractall(folder, filter="data")
    return next(folder.rglob(yaml_name))


def edgekit(args: list[str], log: Path) -> float:
    started = time.perf_counter()
    with log.open("w", encoding="utf-8") as handle:
        subprocess.run([str(Path(sys.executable).parent / "edgekit"), *args], check=True, stdout=handle, stderr=handle)
    return time.perf_counter() - started


def _estimate(est: dict | None) -> dict:
    """The rpi4 estimate of a file, or None values (the cost model reads .tflite and .onnx only)."""
    return {"rpi4_ms": est and est["ms"], "rpi4_band_pct": est and est["band_pct"], "rpi4_threads": est and est["threads"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coco128", action="store_true", help="use COCO128 instead of the built-in scenes")
    parser.add_argument("--aquarium", nargs="?", const=True, default=False, metavar="DATA_YAML",
                        help="use the Aquarium photos, default settings (from the shared archive, or a data.yaml of "
                             "it unpacked elsewhere)")
    parser.add_argument("--teacher", type=Path, help="a teacher file for both runs (a YOLO .onnx export)")
    parser.add_argument("--out", type=Path, help="run folder (default: a new temporary one)")
    parser.add_argument("--tag", help="appended to the results' name, for a run at other settings (a budget's "
                                      "results never overwrite another's)")
    parser.add_argument("extra", nargs="*", help="flags for both edgekit commands (after --)")
    args = parser.parse_args()
    name = data_name = "coco128" if args.coco128 else "aquarium" if args.aquarium else "scenes"
    data = (["--data", str(unpacked_yaml(COCO128, "coco128", "config.yaml"))] + COCO_FLAGS if args.coco128 else
            ["--data", str(args.aquarium if isinstance(args.aquarium, str) else
                           unpacked_yaml(AQUARIUM, "aquarium", "data.yaml"))] if args.aquarium else [])
    teacher = ["--teacher", str(args.teacher.resolve())] if args.teacher else []
    name += ("_yolo" if args.teacher else "") + (f"_{args.tag}" if args.tag else "")
    flags = ["--task", "detect", *data, *teacher, *args.extra]
    out = args.out or Path(tempfile.mkdtemp(prefix=f"edgekit-detect-{name}-"))
    out.mkdir(parents=True, exist_ok=True)
    wall = edgekit(["compress", "--target", "rpi4", *flags, "--out", str(out / "kd")], out / "kd.log")
    shutil.rmtree(out / "scratch", ignore_errors=True)
    shutil.copytree(out / "kd" / "teacher", out / "scratch" / "teacher")
    scratch_flags = [f for f in flags if f not in teacher]  # alpha 0: no teacher
    scratch_wall = edgekit(["distill", *scratch_flags, "--alpha", "0", "--out", str(out / "scratch")], out / "scratch.log")
    report = json.loads((out / "kd" / "report.json").read_text(encoding="utf-8"))
    stage_total = sum(v["seconds"] for v in report["stages"].values())
    if wall < 0.5 * stage_total:  # every stage was up to date: the run was made before (its stage records time it)
        wall = None
    scratch = json.loads((out / "scratch" / "distill" / "stage.json").read_text(encoding="utf-8"))["result"]
    student, int8_pt = report["students"]
    models = {"teacher": report["teacher"], "scratch student": {**scratch, "params": scratch["params"]},
              "distilled student": student, "INT8 PyTorch (QAT)": int8_pt}
    arts = {a["name"]: a for a in report["artifacts"] if a["status"] == "ok"}
    result = {
        "command": "python benchmarks/detect_chain.py " + " ".join(sys.argv[1:]),
        "data_name": data_name, "yolo_teacher": bool(args.teacher), "tag": args.tag,
        "edgekit_flags": flags, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{report['host']['cpu']}, {report['host']['cores']} cores, Python {platform.python_version()}",
        "data": report["data"], "compress_seconds": wall and round(wall, 1), "stage_seconds_total": round(stage_total, 1),
        "scratch_distill_seconds": round(scratch_wall, 1),
        "stage_seconds": {k: v["seconds"] for k, v in report["stages"].items()},
        "models": {k: {"params": v.get("params"), "map50": v["map50"], "map50_95": v["map50_95"]} for k, v in models.items()},
        "artifacts": {n: {"bytes": a["bytes"], "map50": a["map50"], "map50_95": a["map50_95"], "agreement": a["agreement"],
                          "host_p50_ms": a["latency_ms"]["p50"], "host_p90_ms": a["latency_ms"]["p90"],
                          **_estimate(a.get("target_estimate")), "rpi4_fps": a.get("target_fps")}
                      for n, a in arts.items()},
        "settings": report["settings"],
    }
    if args.aquarium:
        int8, fp32 = arts["model_int8.tflite"], student
        best_teacher = report["teacher"]["map50"]
        result["checks"] = {
            "INT8 TFLite mAP50 >= 0.75 x teacher's": [f"{int8['map50']:.4f} vs 0.75 x {best_teacher:.4f}",
                                                       int8["map50"] >= 0.75 * best_teacher],
            "INT8 TFLite within 2 points of the FP32 student": [round(100 * (fp32["map50"] - int8["map50"]), 2),
                                                                fp32["map50"] - int8["map50"] <= 0.02],
            "distilled >= scratch + 2 points": [round(100 * (student["map50"] - scratch["map50"]), 2),
                                                student["map50"] - scratch["map50"] >= 0.02],
            "INT8 TFLite <= 1 MB": [int8["bytes"], int8["bytes"] <= 1_000_000],
            "rpi4 estimate >= 30 FPS (INT8 TFLite)": [int8.get("target_fps"), (int8.get("target_fps") or 0) >= 30],
            "compress <= 30 minutes": [round((wall or stage_total) / 60, 2), (wall or stage_total) <= 1800],
        }
    elif not args.coco128:
        int8, fp32 = arts["model_int8.tflite"], student
        result["checks"] = {
            "INT8 TFLite mAP50 >= 0.80": [int8["map50"], int8["map50"] >= 0.80],
            "INT8 TFLite within 1.5 points of the FP32 student": [round(100 * (fp32["map50"] - int8["map50"]), 2),
                                                                  fp32["map50"] - int8["map50"] <= 0.015],
            "distilled >= scratch + 2 points": [round(100 * (student["map50"] - scratch["map50"]), 2),
                                                student["map50"] - scratch["map50"] >= 0.02],
            "INT8 TFLite <= 1 MB": [int8["bytes"], int8["bytes"] <= 1_000_000],
            "compress <= 10 minutes": [round(wall / 60, 2), wall <= 600],
        }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"detect_{name}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (RESULTS / f"detect_{name}.md").write_text(render(result, name), encoding="utf-8")
    print(render(result, name))
    return 0


def render(r: dict, name: str) -> str:
    data = r["data"]
    title = {"coco128": "COCO128", "scenes": "the built-in scenes", "aquarium": "the Aquarium photos"}[r["data_name"]]
    title += (", YOLO teacher" if r.get("yolo_teacher") else "") + (f" ({r['tag']})" if r.get("tag") else "")
    wall = (f"`edgekit compress` wall time: {r['compress_seconds'] / 60:.1f} min" if r.get("compress_seconds") else
            f"`edgekit compress` was run before this script: its stages took {r['stage_seconds_total'] / 60:.1f} min")
    lines = [f"# Detection chain on {title}", "",
             f"Command: `{r['command']}` (edgekit flags: `{' '.join(r['edgekit_flags'])}`)  ",
             f"Date: {r['date']}  ", f"Machine: {r['machine']}  ",
             f"Data: {data['source']}; {data['counts']}; metrics on `{data['eval_split']}`.  ",
             f"{wall} "
             f"(stages: {', '.join(f'{k} {v:.0f} s' for k, v in r['stage_seconds'].items())}); "
             f"scratch student: {r['scratch_distill_seconds']:.0f} s.  ",
             f"Epochs: teacher {r['settings'].get('teacher_epochs')}, students {r['settings'].get('distill_epochs')}"
             + (f" ({data['distill_epochs_reason']})" if data.get("distill_epochs_reason") else "") + ".", "",
             "| Model | Parameters | mAP50 | mAP50-95 |", "|---|---|---|---|"]
    for model, m in r["models"].items():
        lines.append(f"| {model} | {m['params']:,} | {m['map50']:.4f} | {m['map50_95']:.4f} |")
    lines += ["", "| File | Size KiB | mAP50 | mAP50-95 | Agreement | Host p50 / p90 ms | rpi4 estimate ms | rpi4 FPS |",
              "|---|---|---|---|---|---|---|---|"]
    for n, a in r["artifacts"].items():
        lines.append(f"| {n} | {a['bytes'] / 1024:.1f} | {a['map50']:.4f} | {a['map50_95']:.4f} | {a['agreement']:.4f} | "
                     f"{a['host_p50_ms']:.3f} / {a['host_p90_ms']:.3f} | "
                     + (f"{a['rpi4_ms']:.2f} ± {a['rpi4_band_pct']:.0f} % ({a['rpi4_threads']} threads)" if a["rpi4_ms"]
                        else "- (no estimate for this format)") + f" | {a.get('rpi4_fps') or '-'} |")
    if "checks" in r:
        lines += ["", "| Goal | Measured | Met |", "|---|---|---|"]
        lines += [f"| {k} | {v[0]} | {'yes' if v[1] else 'NO'} |" for k, v in r["checks"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
