"""Train a YOLO teacher with Ultralytics from its model yaml (no pretrained weights) and export it as users do
(`yolo export format=onnx`), for `benchmarks/detect_chain.py --aquarium --teacher <it>` (issue 22).

Ultralytics is AGPL-3.0 and clashes with MediaPipe's OpenCV build, so it is a benchmark extra in its own
environment, never a dependency of edgekit:

    python3.11 -m venv .venv-yolo && .venv-yolo/bin/pip install ultralytics onnx
    .venv-yolo/bin/python benchmarks/yolo_teacher.py --epochs 30 --imgsz 640 --out RUN_DIR

Writes RUN_DIR/yolo.onnx and benchmarks/results/yolo_teacher_aquarium.{json,md}: the training time, the epochs, and
Ultralytics' own mAP50 / mAP50-95 of the trained model on the test split at its own size (its `val`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from detect_chain import AQUARIUM, RESULTS, unpacked_yaml  # noqa: E402 - sibling script


def absolute_yaml(data: Path, out: Path) -> Path:
    """The data.yaml with an absolute ``path`` (Ultralytics resolves a relative one against the working folder)."""
    lines = [line for line in data.read_text(encoding="utf-8").splitlines() if not line.startswith("path:")]
    target = out / "data.yaml"
    target.write_text(f"path: {data.parent.resolve()}\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return target


def _training_seconds(results_csv: Path) -> float | None:
    """Ultralytics' own cumulative training time (its results.csv 'time' column), which spans a resumed run."""
    import csv

    try:
        rows = list(csv.DictReader(results_csv.open(encoding="utf-8")))
        return float(rows[-1]["time"].strip()) if rows and "time" in rows[-1] else None
    except (OSError, ValueError, KeyError):
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="yolov8n.yaml", help="an Ultralytics model yaml (trained from scratch)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics import YOLO, __version__, settings

    settings.update({"sync": False})
    args.out.mkdir(parents=True, exist_ok=True)
    data = absolute_yaml(unpacked_yaml(AQUARIUM, "aquarium", "data.yaml"), args.out)
    last = args.out / "train" / "weights" / "last.pt"
    started = time.perf_counter()
    if last.is_file():  # a training stopped part way (a session's end) goes on from its last epoch
        YOLO(str(last)).train(resume=True)
    else:
        YOLO(args.model).train(data=str(data), epochs=args.epochs, imgsz=args.imgsz, batch=args.batch, device="cpu",
                               workers=2, pretrained=False, amp=False, plots=False, seed=0, deterministic=True,
                               project=str(args.out), name="train", exist_ok=True, verbose=False)
    train_seconds = _training_seconds(args.out / "train" / "results.csv") or time.perf_counter() - started
    best = args.out / "train" / "weights" / "best.pt"
    trained = YOLO(str(best))
    metrics = trained.val(data=str(data), split="test", imgsz=args.imgsz, batch=args.batch, device="cpu", plots=False,
                          project=str(args.out), name="test", exist_ok=True, verbose=False)
    exported = Path(trained.export(format="onnx", imgsz=args.imgsz, device="cpu"))
    shutil.copyfile(exported, args.out / "yolo.onnx")
    result = {
        "command": "python benchmarks/yolo_teacher.py " + " ".join(sys.argv[1:]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}",
        "ultralytics": __version__, "model": args.model, "epochs": args.epochs, "imgsz": args.imgsz,
        "train_seconds": round(train_seconds, 1), "test_map50": round(float(metrics.box.map50), 4),
        "test_map50_95": round(float(metrics.box.map), 4), "onnx": str(args.out / "yolo.onnx"),
        "onnx_bytes": (args.out / "yolo.onnx").stat().st_size,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "yolo_teacher_aquarium.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    md = (f"# YOLO teacher for the Aquarium photos\n\nCommand: `{result['command']}`  \nDate: {result['date']}  \n"
          f"Machine: {result['machine']}; Ultralytics {__version__}, CPU, from `{args.model}` (no pretrained weights)\n\n"
          f"Trained {args.epochs} epochs at {args.imgsz} px in {train_seconds / 60:.1f} min; Ultralytics' own val on the "
          f"test split at {args.imgsz} px: mAP50 {result['test_map50']:.4f}, mAP50-95 {result['test_map50_95']:.4f}; "
          f"ONNX export {result['onnx_bytes'] / 1e6:.1f} MB.\n")
    (RESULTS / "yolo_teacher_aquarium.md").write_text(md, encoding="utf-8")
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
