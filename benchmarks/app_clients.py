"""A run's files opened by the clients apps use, measured on the run's whole test split.

MediaPipe Tasks' ``ImageClassifier`` opens each ``.tflite`` from its path alone (it reads the file's standard
metadata and packed labels) and is handed the test images as an app holds them once resized: uint8 RGB. A
plain ``onnxruntime.InferenceSession(path)`` (default options) runs each ``.onnx``. Their accuracies are set
beside edgekit's own measurement of the same files (report.json) and the PyTorch graphs they came from.

    python benchmarks/app_clients.py --run DIR --name digits   # DIR: a finished `edgekit compress` folder

Writes benchmarks/results/app_clients_<name>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
GOAL_POINTS = 0.3  # the limit: a client within 0.3 point of edgekit's own number


def mediapipe_top1(path: Path, images: np.ndarray) -> np.ndarray:
    import mediapipe as mp
    from mediapipe.tasks.python import vision

    with vision.ImageClassifier.create_from_model_path(str(path)) as classifier:
        return np.array([classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB,
                                                      data=np.ascontiguousarray(im))).classifications[0]
                         .categories[0].index for im in images])


def plain_onnx_top1(path: Path, x_nchw: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path))
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x_nchw[i:i + 64]})[0].argmax(1) for i in range(0, len(x_nchw), 64)])


def open_run(run: Path) -> tuple[dict, dict, Any, Any]:
    """A finished run's report.json, its preprocess.json, the recipe (a PreprocessSpec) and its data."""
    from edgekit.data.loading import load_image_data
    from edgekit.data.preprocess import PreprocessSpec

    report = json.loads((run / "report.json").read_text(encoding="utf-8"))
    doc = json.loads((run / "artifacts" / "preprocess.json").read_text(encoding="utf-8"))
    spec = PreprocessSpec(size=tuple(doc["size"]), mean=tuple(doc["mean"]), std=tuple(doc["std"]))
    return report, doc, spec, load_image_data(report["settings"]["data"], spec)


def measure(run: Path) -> dict:
    report, doc, spec, data = open_run(run)
    images, labels = data.splits[data.eval_split]
    x = spec.normalize(images).numpy()
    own = {a["name"]: a for a in report["artifacts"]}
    pytorch = {"fp32": report["students"][0]["accuracy"],
               "int8": json.loads((run / "quantize" / "stage.json").read_text())["result"]["accuracy"]}
    rows = []
    for name, entry in doc["artifacts"].items():
        path = run / "artifacts" / name
        if path.suffix not in (".tflite", ".onnx"):
            continue  # the .pte files: benchmarks/pte_files.py opens them in executorch.runtime
        client = "MediaPipe ImageClassifier" if path.suffix == ".tflite" else "onnxruntime.InferenceSession(path)"
        top1 = mediapipe_top1(path, images) if path.suffix == ".tflite" else plain_onnx_top1(path, x)
        accuracy = float((top1 == labels).mean())
        precision = "int8" if "int8" in name else "fp32"
        rows.append({"name": name, "client": client, "input": entry["input_dtype"], "images": int(len(labels)),
                     "client_accuracy": round(accuracy, 5), "edgekit_accuracy": own[name]["accuracy"],
                     "pytorch_accuracy": pytorch[precision],
                     "minus_edgekit_points": round(100 * (accuracy - own[name]["accuracy"]), 2),
                     "minus_pytorch_points": round(100 * (accuracy - pytorch[precision]), 2)})
    return {"run": str(run), "data": report["data"], "split": data.eval_split, "rows": rows,
            "edgekit_session_config": {n: e.get("session_config") for n, e in doc["artifacts"].items()
                                       if n.endswith(".onnx")}}


def render(result: dict) -> str:
    lines = [f"# Files opened by app clients: {result['name']}", "",
             f"Command: `python benchmarks/app_clients.py --run <run> --name {result['name']}` on a run made by "
             f"`{result['run_command']}`  ",
             f"Date: {result['date']}  ", f"Commit: {result['commit']}  ", f"Machine: {result['machine']}  ",
             f"Data: {result['data'].get('source', result['data'])}, {result['split']} split, "
             f"{result['rows'][0]['images']} images", "",
             "Each client opens the file from its path alone: MediaPipe Tasks `ImageClassifier` is handed the resized "
             "uint8 RGB images; `onnxruntime.InferenceSession(path)` runs with default options. *edgekit* is "
             "report.json's accuracy for the same file; *PyTorch* the graph it came from (FP32 student, or the PT2E "
             f"INT8 graph). Goal: within {GOAL_POINTS} point.", "",
             "| File | Input | Client | Client accuracy | edgekit | client − edgekit | PyTorch | client − PyTorch |",
             "|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['name']} | {r['input']} | {r['client']} | {100 * r['client_accuracy']:.2f} % | "
                     f"{100 * r['edgekit_accuracy']:.2f} % | {r['minus_edgekit_points']:+.2f} | "
                     f"{100 * r['pytorch_accuracy']:.2f} % | {r['minus_pytorch_points']:+.2f} |")
    lines += ["", "Checks:", ""]
    lines += [f"- {'pass' if c['pass'] else 'MISS'}: {k} ({c['value']:+.2f})" for k, c in result["checks"].items()]
    return "\n".join(lines) + "\n"


def run_arguments(description: str) -> argparse.ArgumentParser:
    """The arguments of a script that measures a finished run (this one, pte_files.py)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a finished `edgekit compress` folder")
    parser.add_argument("--name", required=True, help="results file suffix (digits, cifar10)")
    parser.add_argument("--run-command", default="edgekit compress --target rpi4",
                        help="the command that made --run, for the results file")
    return parser


def stamp(result: dict, args: argparse.Namespace) -> None:
    """The results file's provenance: its name, the run's command, the date and the commit."""
    result.update(name=args.name, run_command=args.run_command,
                  date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  commit=subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                        text=True).stdout.strip())


def write_results(stem: str, result: dict, markdown: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(markdown)
    print(markdown)


def main() -> int:
    args = run_arguments(__doc__).parse_args()
    result = measure(args.run)
    by_name = {r["name"]: r for r in result["rows"]}
    checks = {f"MediaPipe {n} within {GOAL_POINTS} point of edgekit": by_name[n]["minus_edgekit_points"]
              for n in ("model_fp32.tflite", "model_int8.tflite")}
    checks[f"plain-session model_int8.onnx within {GOAL_POINTS} point of the PyTorch INT8 graph"] = \
        by_name["model_int8.onnx"]["minus_pytorch_points"]
    stamp(result, args)
    result.update(machine=f"{platform.processor() or platform.machine()}, python {platform.python_version()}",
                  checks={k: {"value": v, "pass": abs(v) <= GOAL_POINTS} for k, v in checks.items()})
    write_results(f"app_clients_{args.name}", result, render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
